/** Min of two tensors, elementwise. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { binary } from './binary.js';
import type { Operand } from './common.js';
import { less } from './logical.js';
import { where } from './where.js';

/** `min(a, b)` elementwise (numpy broadcasting). */
export function minimum(a: Operand, b: Operand): Value {
  return binary('Min', 'minimum', a, b);
}

/** dy flows to the smaller operand; on ties it goes to a. */
export const minimumGrad: GradRule = {
  op: 'Min',
  grad: (ctx) => {
    const a = inputOf(ctx, 0);
    const b = inputOf(ctx, 1);
    const dy = dyOf(ctx);
    const bWins = less(b, a);
    return [
      ctx.needs[0] ? where(bWins, 0, dy) : undefined,
      ctx.needs[1] ? where(bWins, dy, 0) : undefined,
    ];
  },
};
