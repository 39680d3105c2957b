import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { geluErf, geluTanh } from '../../../src/graph/nn/gelu.js';
import { rmsNorm } from '../../../src/graph/nn/rmsNorm.js';
import { silu } from '../../../src/graph/nn/silu.js';
import { F32, F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

/** erf by its Taylor series (|x| < 3 in these tests). */
function erfRef(x: number): number {
  let sum = 0;
  let term = x;
  for (let n = 0; n < 80; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

describe('activations and RMSNorm', () => {
  test('geluTanh (GPT-2 gelu_new) in float64: forward and gradient (eps 1e-6, rtol 1e-5)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [3, 4]);
    const y = geluTanh(x);
    const data = randomData(x, [3, 4], 1, -3, 3);
    const feeds = [{ value: x, data, dims: [3, 4] }];
    const out = await runGraph(g, feeds, { y });
    const ref = Array.from(data, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    assertClose(out.y.data, ref, 1e-12, 1e-14, 'geluTanh');
    await gradCheck(g, y, feeds, [x], F64);
  });

  test('geluErf (BERT gelu) in float32, as the CPU provider has no float64 Erf (eps 1e-2, rtol 2e-2, atol 2e-3)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3, 4]);
    const y = geluErf(x);
    const data = randomData(x, [3, 4], 2, -3, 3);
    const feeds = [{ value: x, data, dims: [3, 4] }];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, Array.from(data, (v) => 0.5 * v * (1 + erfRef(v / Math.SQRT2))), 1e-5, 1e-6, 'geluErf');
    await gradCheck(g, y, feeds, [x], F32);
  });

  test('silu in float64 (eps 1e-6, rtol 1e-5)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 5]);
    const y = silu(x);
    const data = randomData(x, [2, 5], 3, -4, 4);
    const feeds = [{ value: x, data, dims: [2, 5] }];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, Array.from(data, (v) => v / (1 + Math.exp(-v))), 1e-12, 1e-14, 'silu');
    await gradCheck(g, y, feeds, [x], F64);
  });

  test('silu in float32, where onnxruntime fuses it (eps 1e-2, rtol 2e-2, atol 2e-3)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 5]);
    const y = silu(x);
    const data = randomData(x, [2, 5], 3, -4, 4);
    const feeds = [{ value: x, data, dims: [2, 5] }];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, Array.from(data, (v) => v / (1 + Math.exp(-v))), 1e-5, 1e-6, 'silu f32');
    await gradCheck(g, y, feeds, [x], F32);
  });

  test('rmsNorm (HF LlamaRMSNorm) in float64 (eps 1e-6, rtol 1e-5)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3, 4]);
    const w = g.input('w', 'float64', [4]);
    const y = rmsNorm(x, w, 1e-6);
    const xd = randomData(x, [2, 3, 4], 4, -2, 2);
    const wd = randomData(w, [4], 5, 0.5, 1.5);
    const feeds = [{ value: x, data: xd, dims: [2, 3, 4] }, { value: w, data: wd, dims: [4] }];
    const out = await runGraph(g, feeds, { y });
    const ref: number[] = [];
    for (let r = 0; r < 6; r++) {
      const row = Array.from(xd.subarray(r * 4, r * 4 + 4));
      const inv = 1 / Math.sqrt(row.reduce((a, v) => a + v * v, 0) / 4 + 1e-6);
      row.forEach((v, j) => ref.push(wd[j] * v * inv));
    }
    assertClose(out.y.data, ref, 1e-12, 1e-14, 'rmsNorm');
    await gradCheck(g, y, feeds, [x, w], F64);
  });
});
