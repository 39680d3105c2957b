/** Exp, elementwise. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { unary } from './unary.js';
import { mul } from './mul.js';
/** `eˣ`. */
export function exp(x: Value): Value {
  return unary('Exp', 'exp', x);
}

/** d eˣ = dy · eˣ, from the output. */
export const expGrad: GradRule = {
  op: 'Exp',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    return [mul(dy, ctx.outputs[0])];
  },
};
