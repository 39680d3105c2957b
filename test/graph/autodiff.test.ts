import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/graph/builder.js';
import { grad } from '../../src/graph/autodiff.js';
import { add } from '../../src/graph/ops/add.js';
import { exp } from '../../src/graph/ops/exp.js';
import { matMul } from '../../src/graph/ops/matMul.js';
import { mul } from '../../src/graph/ops/mul.js';
import { reduceMax } from '../../src/graph/ops/reduceMax.js';
import { reduceSum } from '../../src/graph/ops/reduceSum.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from './gradCheck.js';

describe('grad', () => {
  test('fan-out gradients are summed: d/dx Σ(x·x + x) = 2x + 1', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [4]);
    const loss = reduceSum(add(mul(x, x), x));
    const [dx] = grad(loss, [x]);
    const data = Float64Array.of(-1, 0, 0.5, 3);
    const out = await runGraph(g, [{ value: x, data, dims: [4] }], { dx });
    assertClose(out.dx.data, Array.from(data, (v) => 2 * v + 1), 0, 1e-15, 'dx');
  });

  test('gradients with respect to an intermediate value and an input together', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3]);
    const w = g.input('w', 'float64', [3, 2]);
    const h = matMul(x, w);
    const y = exp(h);
    const feeds = [{ value: x, data: randomData(x, [2, 3], 1), dims: [2, 3] }, { value: w, data: randomData(w, [3, 2], 2), dims: [3, 2] }];
    await gradCheck(g, y, feeds, [w, x], F64);
    const [dh] = grad(reduceSum(y), [h]);
    const out = await runGraph(g, feeds, { dh, y });
    assertClose(out.dh.data, out.y.data, 0, 0, 'd Σ exp(h) / dh = exp(h)');
  });

  test('only the requested parameters get backward nodes', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 3]);
    const w0 = g.input('w0', 'float32', [3, 3]);
    const a = g.input('a', 'float32', [3, 3]);
    const loss = reduceSum(add(matMul(x, w0), matMul(x, a)));
    const before = g.nodes.length;
    grad(loss, [a]);
    const matmulsAfter = g.nodes.slice(before).filter((n) => n.op === 'MatMul' || n.op === 'Gemm').length;
    assert.equal(matmulsAfter, 1, 'one product for dA, none for dW0 or dx');
  });

  test('errors: non-scalar loss, unreachable parameter, op without a rule, int parameter', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 3]);
    const other = g.input('other', 'float32', [3]);
    const ids = g.input('ids', 'int64', [2]);
    assert.throws(() => grad(mul(x, 2), [x]), /^GraphError: grad: loss mul_\d+: float32\[2, 3\] is not a scalar/);
    assert.throws(() => grad(reduceSum(x), [x, other]), /grad: parameter other does not reach the loss/);
    assert.throws(() => grad(reduceSum(reduceMax(x, 1)), [x]), /grad: ReduceMax \(reduceMax_\d+\) has no gradient rule but lies between the parameters and the loss/);
    assert.throws(() => grad(reduceSum(x), [ids]), /grad: parameter ids is int64/);
  });
});
