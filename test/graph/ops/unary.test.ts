import { describe, test } from 'node:test';
import { GraphBuilder, type Value } from '../../../src/graph/builder.js';
import { cast } from '../../../src/graph/ops/cast.js';
import { erf } from '../../../src/graph/ops/erf.js';
import { exp } from '../../../src/graph/ops/exp.js';
import { identity } from '../../../src/graph/ops/identity.js';
import { log } from '../../../src/graph/ops/log.js';
import { mul } from '../../../src/graph/ops/mul.js';
import { neg } from '../../../src/graph/ops/neg.js';
import { sigmoid } from '../../../src/graph/ops/sigmoid.js';
import { sqrt } from '../../../src/graph/ops/sqrt.js';
import { tanh } from '../../../src/graph/ops/tanh.js';
import { F32, F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

/** Error function reference (Abramowitz–Stegun 7.1.26 is too coarse; use a series/continued fraction). */
function erfRef(x: number): number {
  // Taylor series converges fast for |x| < 3, which covers the test range.
  let sum = 0;
  let term = x;
  for (let n = 0; n < 60; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const UNARY: readonly [string, (x: Value) => Value, (x: number) => number, number, number][] = [
  ['neg', neg, (x) => -x, -1, 1],
  ['sqrt', sqrt, Math.sqrt, 0.3, 2],
  ['exp', exp, Math.exp, -1, 1],
  ['log', log, Math.log, 0.3, 2],
  ['tanh', tanh, Math.tanh, -2, 2],
  ['sigmoid', sigmoid, (x) => 1 / (1 + Math.exp(-x)), -3, 3],
  ['identity', identity, (x) => x, -1, 1],
];

describe('unary ops', () => {
  for (const [name, op, ref, lo, hi] of UNARY) {
    test(`${name}: forward matches Math, gradient check (float64, eps 1e-6, rtol 1e-5)`, async () => {
      const g = new GraphBuilder();
      const x = g.input('x', 'float64', [2, 4]);
      const y = op(x);
      const data = randomData(x, [2, 4], 7, lo, hi);
      const feeds = [{ value: x, data, dims: [2, 4] }];
      const out = await runGraph(g, feeds, { y });
      assertClose(out.y.data, Array.from(data, ref), 1e-12, 1e-14, name);
      await gradCheck(g, y, feeds, [x], F64);
    });
  }

  test('erf: float32 only on the CPU provider; forward and gradient check (eps 1e-2, rtol 2e-2, atol 2e-3)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 4]);
    const y = erf(x);
    const data = randomData(x, [2, 4], 8, -2, 2);
    const feeds = [{ value: x, data, dims: [2, 4] }];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, Array.from(data, erfRef), 1e-5, 1e-6, 'erf');
    await gradCheck(g, y, feeds, [x], F32);
  });

  test('cast float32 → float64 passes the gradient back as float32', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3]);
    const y = mul(cast(x, 'float64'), cast(x, 'float64'));
    const data = Float32Array.of(0.5, -1.25, 2);
    const [dx] = await gradCheck(g, cast(y, 'float32'), [{ value: x, data, dims: [3] }], [x], F32);
    // loss = Σ x²·R with R in [0.5, 1.5): |dx| = 2|x|·R.
    for (let i = 0; i < 3; i++) {
      const r = dx[i] / (2 * data[i]);
      if (!(r >= 0.5 && r < 1.5)) throw new Error(`cast gradient ${dx[i]} is not 2x·R for x=${data[i]}`);
    }
  });
});
