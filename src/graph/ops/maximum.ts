/** Max of two tensors, elementwise. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { binary } from './binary.js';
import type { Operand } from './common.js';
import { less } from './logical.js';
import { where } from './where.js';

/** `max(a, b)` elementwise (numpy broadcasting). */
export function maximum(a: Operand, b: Operand): Value {
  return binary('Max', 'maximum', a, b);
}

/** dy flows to the larger operand; on ties it goes to a. */
export const maximumGrad: GradRule = {
  op: 'Max',
  grad: (ctx) => {
    const a = inputOf(ctx, 0);
    const b = inputOf(ctx, 1);
    const dy = dyOf(ctx);
    const bWins = less(a, b);
    return [
      ctx.needs[0] ? where(bWins, 0, dy) : undefined,
      ctx.needs[1] ? where(bWins, dy, 0) : undefined,
    ];
  },
};
