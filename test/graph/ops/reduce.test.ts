import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { reduceMax } from '../../../src/graph/ops/reduceMax.js';
import { reduceMean } from '../../../src/graph/ops/reduceMean.js';
import { reduceSum } from '../../../src/graph/ops/reduceSum.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

describe('reductions (float64, gradient check eps 1e-6, rtol 1e-5)', () => {
  for (const keepDims of [false, true]) {
    test(`reduceSum and reduceMean over axes [0, 2], keepDims=${keepDims}`, async () => {
      const g = new GraphBuilder();
      const x = g.input('x', 'float64', [2, 3, 4]);
      const s = reduceSum(x, [0, 2], keepDims);
      const m = reduceMean(x, [-1, 0], keepDims);
      assert.deepEqual(s.shape, keepDims ? [1, 3, 1] : [3]);
      const data = randomData(x, [2, 3, 4], 1);
      const feeds = [{ value: x, data, dims: [2, 3, 4] }];
      const out = await runGraph(g, feeds, { s, m });
      const ref = [0, 1, 2].map((j) => {
        let t = 0;
        for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) t += data[i * 12 + j * 4 + k];
        return t;
      });
      assertClose(out.s.data, ref, 1e-14, 1e-14, 'reduceSum');
      assertClose(out.m.data, ref.map((v) => v / 8), 1e-14, 1e-14, 'reduceMean');
      await gradCheck(g, s, feeds, [x], F64);
      await gradCheck(g, m, feeds, [x], F64);
    });
  }

  test('reduceMean over a symbolic axis divides by the run-time count', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', ['n', 3]);
    const m = reduceMean(x, 0);
    assert.deepEqual(m.shape, [3]);
    await gradCheck(g, m, [{ value: x, data: randomData(x, [5, 3], 2), dims: [5, 3] }], [x], F64);
  });

  test('reduceSum over all axes gives a scalar; reduceMax runs forward', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3]);
    const s = reduceSum(x);
    const mx = reduceMax(x, 1);
    assert.deepEqual(s.shape, []);
    const data = Float64Array.of(1, 5, 2, -1, -3, 0);
    const out = await runGraph(g, [{ value: x, data, dims: [2, 3] }], { s, mx });
    assert.deepEqual(out.s.data, [4]);
    assert.deepEqual(out.mx.data, [5, 0]);
    await gradCheck(g, s, [{ value: x, data, dims: [2, 3] }], [x], F64);
  });
});
