import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { grad } from '../../../src/graph/autodiff.js';
import { concat } from '../../../src/graph/ops/concat.js';
import { mul } from '../../../src/graph/ops/mul.js';
import { reduceSum } from '../../../src/graph/ops/reduceSum.js';
import { reshape } from '../../../src/graph/ops/reshape.js';
import { slice } from '../../../src/graph/ops/slice.js';
import { split } from '../../../src/graph/ops/split.js';
import { squeeze } from '../../../src/graph/ops/squeeze.js';
import { transpose } from '../../../src/graph/ops/transpose.js';
import { unsqueeze } from '../../../src/graph/ops/unsqueeze.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

/** Row-major strides of a static shape. */
function strides(shape: readonly number[]): number[] {
  return shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
}

describe('shape ops (float64, gradient check eps 1e-6, rtol 1e-5)', () => {
  test('reshape with -1 and symbols round-trips, and runs for any batch size', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', ['batch', 3, 4]);
    const flat = reshape(x, [-1, 4]);
    assert.deepEqual(flat.shape, ['3*batch', 4]);
    const back = reshape(mul(flat, 2), ['batch', 12]);
    assert.deepEqual(back.shape, ['batch', 12]);
    for (const batch of [1, 2]) {
      const data = randomData(x, [batch, 3, 4], batch);
      const out = await runGraph(g, [{ value: x, data, dims: [batch, 3, 4] }], { back });
      assert.deepEqual(out.back.dims, [batch, 12]);
      assertClose(out.back.data, Array.from(data, (v) => 2 * v), 0, 1e-15, 'reshape');
    }
    await gradCheck(g, back, [{ value: x, data: randomData(x, [2, 3, 4], 5), dims: [2, 3, 4] }], [x], F64);
  });

  test('transpose [2, 0, 1]', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3, 4]);
    const y = transpose(x, [2, 0, 1]);
    assert.deepEqual(y.shape, [4, 2, 3]);
    const data = randomData(x, [2, 3, 4], 1);
    const out = await runGraph(g, [{ value: x, data, dims: [2, 3, 4] }], { y });
    const [s0, s1, s2] = strides([2, 3, 4]);
    const ref: number[] = [];
    for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) ref.push(data[i * s0 + j * s1 + k * s2]);
    assertClose(out.y.data, ref, 0, 0, 'transpose');
    await gradCheck(g, y, [{ value: x, data, dims: [2, 3, 4] }], [x], F64);
  });

  test('slice with positive and negative starts', async () => {
    for (const [start, end, len] of [[1, 4, 3], [-2, undefined, 2], [0, 100, 5]] as const) {
      const g = new GraphBuilder();
      const x = g.input('x', 'float64', [2, 5, 3]);
      const y = slice(x, 1, start, end);
      assert.deepEqual(y.shape, [2, len, 3]);
      const data = randomData(x, [2, 5, 3], 2);
      const out = await runGraph(g, [{ value: x, data, dims: [2, 5, 3] }], { y });
      const from = start < 0 ? start + 5 : start;
      const ref: number[] = [];
      for (let i = 0; i < 2; i++) for (let j = from; j < from + len; j++) for (let k = 0; k < 3; k++) ref.push(data[i * 15 + j * 3 + k]);
      assertClose(out.y.data, ref, 0, 0, `slice ${start}:${String(end)}`);
      await gradCheck(g, y, [{ value: x, data, dims: [2, 5, 3] }], [x], F64);
    }
  });

  test('slice with step 2 runs forward; its gradient is refused by name', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [6]);
    const y = slice(x, 0, 1, 6, 2);
    assert.deepEqual(y.shape, [3]);
    const out = await runGraph(g, [{ value: x, data: Float64Array.of(0, 1, 2, 3, 4, 5), dims: [6] }], { y });
    assert.deepEqual(out.y.data, [1, 3, 5]);
    assert.throws(() => grad(reduceSum(y), [x]), /slice: the gradient needs a numeric axis and step 1/);
  });

  test('split into three, one piece unused (its gradient is zero)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 6]);
    const [p0, p1, p2] = split(x, 1, [1, 2, 3]);
    assert.deepEqual([p0.shape, p1.shape, p2.shape], [[2, 1], [2, 2], [2, 3]]);
    const y = concat([p2, p0], 1);
    const data = randomData(x, [2, 6], 3);
    const out = await runGraph(g, [{ value: x, data, dims: [2, 6] }], { y });
    assertClose(out.y.data, [data[3], data[4], data[5], data[0], data[9], data[10], data[11], data[6]], 0, 0, 'split/concat');
    const [dx] = await gradCheck(g, y, [{ value: x, data, dims: [2, 6] }], [x], F64);
    assert.deepEqual([dx[1], dx[2], dx[7], dx[8]], [0, 0, 0, 0]);
  });

  test('concat of different widths', async () => {
    const g = new GraphBuilder();
    const a = g.input('a', 'float64', [2, 1]);
    const b = g.input('b', 'float64', [2, 3]);
    const y = concat([a, b, a], -1);
    assert.deepEqual(y.shape, [2, 5]);
    await gradCheck(g, y, [{ value: a, data: randomData(a, [2, 1], 1), dims: [2, 1] }, { value: b, data: randomData(b, [2, 3], 2), dims: [2, 3] }], [a, b], F64);
  });

  test('unsqueeze then squeeze', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3]);
    const u = unsqueeze(x, [0, 2]);
    assert.deepEqual(u.shape, [1, 2, 1, 3]);
    const y = squeeze(mul(u, u), [0]);
    assert.deepEqual(y.shape, [2, 1, 3]);
    await gradCheck(g, y, [{ value: x, data: randomData(x, [2, 3], 4), dims: [2, 3] }], [x], F64);
  });
});
