/** Mul with broadcasting. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { binary } from './binary.js';
import type { Operand } from './common.js';

/** `a * b` elementwise (numpy broadcasting). */
export function mul(a: Operand, b: Operand): Value {
  return binary('Mul', 'mul', a, b);
}

/** d(a·b): dy·b for a, dy·a for b, each summed over its broadcast axes. */
export const mulGrad: GradRule = {
  op: 'Mul',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    const a = inputOf(ctx, 0);
    const b = inputOf(ctx, 1);
    return [
      ctx.needs[0] ? mul(dy, b) : undefined,
      ctx.needs[1] ? mul(dy, a) : undefined,
    ];
  },
};
