/** Sigmoid, elementwise. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { unary } from './unary.js';
import { mul } from './mul.js';
import { sub } from './sub.js';
/** Logistic sigmoid `1 / (1 + e⁻ˣ)`. */
export function sigmoid(x: Value): Value {
  return unary('Sigmoid', 'sigmoid', x);
}

/** d σ(x) = dy · σ(x)(1 − σ(x)), from the output. */
export const sigmoidGrad: GradRule = {
  op: 'Sigmoid',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    return [mul(dy, mul(ctx.outputs[0], sub(1, ctx.outputs[0])))];
  },
};
