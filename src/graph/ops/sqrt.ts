/** Sqrt, elementwise. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { unary } from './unary.js';
import { div } from './div.js';
import { mul } from './mul.js';
/** `√x`. */
export function sqrt(x: Value): Value {
  return unary('Sqrt', 'sqrt', x);
}

/** d√x = dy / (2√x), from the output. */
export const sqrtGrad: GradRule = {
  op: 'Sqrt',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    return [div(mul(dy, 0.5), ctx.outputs[0])];
  },
};
