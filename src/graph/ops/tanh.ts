/** Tanh, elementwise. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { unary } from './unary.js';
import { mul } from './mul.js';
import { sub } from './sub.js';
/** Hyperbolic tangent. */
export function tanh(x: Value): Value {
  return unary('Tanh', 'tanh', x);
}

/** d tanh x = dy · (1 − tanh²x), from the output. */
export const tanhGrad: GradRule = {
  op: 'Tanh',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    return [mul(dy, sub(1, mul(ctx.outputs[0], ctx.outputs[0])))];
  },
};
