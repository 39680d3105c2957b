/** Sub with broadcasting. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { binary } from './binary.js';
import type { Operand } from './common.js';
import { neg } from './neg.js';

/** `a - b` (numpy broadcasting). */
export function sub(a: Operand, b: Operand): Value {
  return binary('Sub', 'sub', a, b);
}

/** d(a-b): dy for a, -dy for b, each summed over its broadcast axes. */
export const subGrad: GradRule = {
  op: 'Sub',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    return [
      ctx.needs[0] ? dy : undefined,
      ctx.needs[1] ? neg(dy) : undefined,
    ];
  },
};
