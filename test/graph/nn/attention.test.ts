import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';
import { causalAttention } from './attentionCase.js';

/** Causal attention for one head: softmax(q kᵀ/√d, j ≤ i) v. */
function attentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, seq: number, d: number, keep: (j: number) => boolean = () => true): number[] {
  const out: number[] = [];
  for (let i = 0; i < seq; i++) {
    const s = Array.from({ length: i + 1 }, (_, j) => {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += q[i * d + c] * k[j * d + c];
      return keep(j) ? dot / Math.sqrt(d) : -Infinity;
    });
    const max = Math.max(...s);
    const e = s.map((x) => Math.exp(x - max));
    const z = e.reduce((a, b) => a + b, 0);
    for (let c = 0; c < d; c++) out.push(e.reduce((acc, w, j) => acc + (w / z) * v[j * d + c], 0));
  }
  return out;
}

describe('causal attention from causalMask and maskedSoftmax, as the models build it (float64, gradient check eps 1e-6, rtol 1e-5)', () => {
  test('causal', async () => {
    const [heads, seq, d] = [2, 4, 3];
    const g = new GraphBuilder();
    const q = g.input('q', 'float64', [heads, 'seq', d]);
    const k = g.input('k', 'float64', [heads, 'seq', d]);
    const v = g.input('v', 'float64', [heads, 'seq', d]);
    const y = causalAttention(q, k, v);
    assert.deepEqual(y.shape, [heads, 'seq', d]);
    const feeds = [q, k, v].map((x, i) => ({ value: x, data: randomData(x, [heads, seq, d], i + 1), dims: [heads, seq, d] }));
    const out = await runGraph(g, feeds, { y });
    const size = seq * d;
    const ref = [0, 1].flatMap((h) => attentionRef(...feeds.map((f) => f.data.subarray(h * size, (h + 1) * size)) as [Float64Array, Float64Array, Float64Array], seq, d));
    // onnxruntime folds the 1/√d scale into a fused MatMul whose alpha is a float32 attribute.
    assertClose(out.y.data, ref, 1e-7, 1e-9, 'attention');
    await gradCheck(g, y, feeds, [q, k, v], F64);
  });

  test('causal combined with a key padding mask', async () => {
    const [seq, d] = [3, 2];
    const g = new GraphBuilder();
    const q = g.input('q', 'float64', [seq, d]);
    const k = g.input('k', 'float64', [seq, d]);
    const v = g.input('v', 'float64', [seq, d]);
    const pad = g.input('pad', 'bool', [1, seq]);
    const y = causalAttention(q, k, v, pad);
    const feeds = [q, k, v].map((x, i) => ({ value: x, data: randomData(x, [seq, d], i + 7), dims: [seq, d] }));
    const padData = Uint8Array.of(1, 0, 1);
    const all = [...feeds, { value: pad, data: padData, dims: [1, seq] }];
    const out = await runGraph(g, all, { y });
    const ref = attentionRef(feeds[0].data, feeds[1].data, feeds[2].data, seq, d, (j) => padData[j] === 1);
    assertClose(out.y.data, ref, 1e-7, 1e-9, 'masked attention');
    await gradCheck(g, y, all, [q, k, v], F64);
  });
});
