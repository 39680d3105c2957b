import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { greaterOrEqual } from '../../../src/graph/ops/logical.js';
import { where } from '../../../src/graph/ops/where.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

describe('where (float64, gradient check eps 1e-6, rtol 1e-5)', () => {
  test('selects elementwise and routes the gradient to the chosen side, with broadcasting', async () => {
    const g = new GraphBuilder();
    const c = g.input('c', 'bool', [2, 3]);
    const a = g.input('a', 'float64', [2, 3]);
    const b = g.input('b', 'float64', [3]);
    const y = where(c, a, b);
    const cond = Uint8Array.of(1, 0, 1, 0, 0, 1);
    const da = randomData(a, [2, 3], 1);
    const db = randomData(b, [3], 2);
    const feeds = [{ value: c, data: cond, dims: [2, 3] }, { value: a, data: da, dims: [2, 3] }, { value: b, data: db, dims: [3] }];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, Array.from(cond, (k, i) => (k === 1 ? da[i] : db[i % 3])), 0, 0, 'where');
    await gradCheck(g, y, feeds, [a, b], F64);
  });

  test('a computed condition and a number operand', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [6]);
    const y = where(greaterOrEqual(x, 0), x, 0.1);
    await gradCheck(g, y, [{ value: x, data: Float64Array.of(-1, -0.5, 0.3, 0.7, -0.2, 1.5), dims: [6] }], [x], F64);
  });
});
