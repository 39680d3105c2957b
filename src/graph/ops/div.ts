/** Div with broadcasting. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { binary } from './binary.js';
import type { Operand } from './common.js';
import { mul } from './mul.js';
import { neg } from './neg.js';

/** `a / b` elementwise (numpy broadcasting; integer division for int dtypes). */
export function div(a: Operand, b: Operand): Value {
  return binary('Div', 'div', a, b);
}

/** d(a/b): dy/b for a, -dy·y/b (= -dy·a/b²) for b, each summed over its broadcast axes. */
export const divGrad: GradRule = {
  op: 'Div',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    const b = inputOf(ctx, 1);
    const y = ctx.outputs[0];
    return [
      ctx.needs[0] ? div(dy, b) : undefined,
      ctx.needs[1] ? neg(div(mul(dy, y), b)) : undefined,
    ];
  },
};
