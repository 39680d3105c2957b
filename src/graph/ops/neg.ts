/** Neg, elementwise. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { unary } from './unary.js';

/** `-x`. */
export function neg(x: Value): Value {
  return unary('Neg', 'neg', x, false);
}

/** d(-x) = -dy. */
export const negGrad: GradRule = {
  op: 'Neg',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    return [neg(dy)];
  },
};
