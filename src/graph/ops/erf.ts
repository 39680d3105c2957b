/** Erf, elementwise. onnxruntime's CPU provider runs it in float32 only (no float64 kernel). */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { exp } from './exp.js';
import { mul } from './mul.js';
import { neg } from './neg.js';
import { unary } from './unary.js';

/** The error function. */
export function erf(x: Value): Value {
  return unary('Erf', 'erf', x);
}

/** d erf x = dy · 2/√π · e^(−x²). */
export const erfGrad: GradRule = {
  op: 'Erf',
  grad: (ctx) => {
    const x = inputOf(ctx, 0);
    return [mul(dyOf(ctx), mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))];
  },
};
