/** Add with broadcasting. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { binary } from './binary.js';
import type { Operand } from './common.js';

/** `a + b` (numpy broadcasting; a number becomes a scalar of the other's dtype). */
export function add(a: Operand, b: Operand): Value {
  return binary('Add', 'add', a, b);
}

/** d(a+b) = dy for both (autodiff sums it over the axes each was broadcast along). */
export const addGrad: GradRule = {
  op: 'Add',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    return [
      ctx.needs[0] ? dy : undefined,
      ctx.needs[1] ? dy : undefined,
    ];
  },
};
