import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { rope } from '../../../src/graph/nn/rope.js';
import { ropeTables } from '../../helpers/ropeTables.js';
import { slice } from '../../../src/graph/ops/slice.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

/** HF Llama apply_rotary_pos_emb for one head: q·cos + rotate_half(q)·sin. */
function ropeRef(q: ArrayLike<number>, seq: number, d: number, base: number): number[] {
  const out: number[] = [];
  const half = d / 2;
  for (let t = 0; t < seq; t++) {
    for (let i = 0; i < d; i++) {
      const freq = 1 / base ** ((2 * (i % half)) / d);
      const rotated = i < half ? -q[t * d + i + half] : q[t * d + i - half];
      out.push(q[t * d + i] * Math.cos(t * freq) + rotated * Math.sin(t * freq));
    }
  }
  return out;
}

describe('rope (HF rotate_half convention, float64, gradient check eps 1e-6, rtol 1e-5)', () => {
  test('cos/sin as inputs: matches the HF formula, gradient checks', async () => {
    const [heads, seq, d] = [2, 3, 6];
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [1, heads, seq, d]);
    const cos = g.input('cos', 'float64', [seq, d]);
    const sin = g.input('sin', 'float64', [seq, d]);
    const y = rope(x, cos, sin);
    const tables = ropeTables(seq, d, 10000);
    const data = randomData(x, [1, heads, seq, d], 1);
    const feeds = [
      { value: x, data, dims: [1, heads, seq, d] },
      { value: cos, data: tables.cos, dims: [seq, d] },
      { value: sin, data: tables.sin, dims: [seq, d] },
    ];
    const out = await runGraph(g, feeds, { y });
    const ref = [0, 1].flatMap((h) => ropeRef(data.subarray(h * seq * d, (h + 1) * seq * d), seq, d, 10000));
    assertClose(out.y.data, ref, 1e-12, 1e-14, 'rope');
    await gradCheck(g, y, feeds, [x], F64);
  });

  test('tables as an initializer sliced to a symbolic seq', async () => {
    const [maxSeq, d] = [8, 4];
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', ['batch', 'seq', d]);
    const tables = ropeTables(maxSeq, d, 500);
    const cos = slice(g.initializer('rope.cos', tables.cos, [maxSeq, d]), 0, 0, 'seq');
    const sin = slice(g.initializer('rope.sin', tables.sin, [maxSeq, d]), 0, 0, 'seq');
    const y = rope(x, cos, sin);
    const seq = 5;
    const data = randomData(x, [1, seq, d], 2);
    const feeds = [{ value: x, data, dims: [1, seq, d] }];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, ropeRef(data, seq, d, 500), 1e-12, 1e-14, 'rope sliced');
    await gradCheck(g, y, feeds, [x], F64);
  });
});
