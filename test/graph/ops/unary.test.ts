import { describe, test } from 'node:test';
import { GraphBuilder, type Value } from '../../../src/graph/builder.js';
import { cast } from '../../../src/graph/ops/cast.js';
import { erf } from '../../../src/graph/ops/erf.js';
import { exp } from '../../../src/graph/ops/exp.js';
import { log } from '../../../src/graph/ops/log.js';
import { mul } from '../../../src/graph/ops/mul.js';
import { neg } from '../../../src/graph/ops/neg.js';
import { sigmoid } from '../../../src/graph/ops/sigmoid.js';
import { sqrt } from '../../../src/graph/ops/sqrt.js';
import { tanh } from '../../../src/graph/ops/tanh.js';
import { F32, checkUnary, erfRef, gradCheck } from '../gradCheck.js';

const UNARY: readonly [string, (x: Value) => Value, (x: number) => number, number, number][] = [
  ['neg', neg, (x) => -x, -1, 1],
  ['sqrt', sqrt, Math.sqrt, 0.3, 2],
  ['exp', exp, Math.exp, -1, 1],
  ['log', log, Math.log, 0.3, 2],
  ['tanh', tanh, Math.tanh, -2, 2],
  ['sigmoid', sigmoid, (x) => 1 / (1 + Math.exp(-x)), -3, 3],
];

describe('unary ops', () => {
  for (const [name, op, ref, lo, hi] of UNARY) {
    test(`${name}: forward matches Math, gradient check (float64, eps 1e-6, rtol 1e-5)`, async () => {
      await checkUnary(op, { dtype: 'float64', dims: [2, 4], seed: 7, range: [lo, hi], ref, rtol: 1e-12, atol: 1e-14, what: name });
    });
  }

  test('erf: float32 only on the CPU provider; forward and gradient check (eps 1e-2, rtol 2e-2, atol 2e-3)', async () => {
    await checkUnary(erf, { dtype: 'float32', dims: [2, 4], seed: 8, range: [-2, 2], ref: erfRef, rtol: 1e-5, atol: 1e-6, what: 'erf' });
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
