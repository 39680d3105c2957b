/** Identity, elementwise. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { unary } from './unary.js';

/** Copy of x (any dtype). */
export function identity(x: Value): Value {
  return unary('Identity', 'identity', x, false);
}

/** d x = dy. */
export const identityGrad: GradRule = {
  op: 'Identity',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    return [dy];
  },
};
