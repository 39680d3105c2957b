/** Add with broadcasting. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { binary } from './binary.js';
import type { Operand } from './common.js';
import { sumToShape } from './reduceSum.js';

/** `a + b` (numpy broadcasting; a number becomes a scalar of the other's dtype). */
export function add(a: Operand, b: Operand): Value {
  return binary('Add', 'add', a, b);
}

/** d(a+b) = dy for both, summed over the axes each was broadcast along. */
export const addGrad: GradRule = {
  op: 'Add',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    return [
      ctx.needs[0] ? sumToShape(dy, inputOf(ctx, 0).shape) : undefined,
      ctx.needs[1] ? sumToShape(dy, inputOf(ctx, 1).shape) : undefined,
    ];
  },
};
