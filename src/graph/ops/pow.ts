/** Pow with a scalar (or broadcast) exponent. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { binary } from './binary.js';
import { log } from './log.js';
import { mul } from './mul.js';
import { sub } from './sub.js';

/** `x ** p`; a number exponent becomes a scalar constant of x's dtype. */
export function pow(x: Value, p: Value | number): Value {
  check(typeof p === 'number' || p.rank === 0 || p.shape.every((d) => d === 1), () => `pow: exponent must be a scalar, got ${typeof p === 'number' ? p : p.toString()}`);
  return binary('Pow', 'pow', x, p);
}

/** d(x^p)/dx = p·x^(p-1); d(x^p)/dp = x^p·log(x) (only built when p needs a gradient). */
export const powGrad: GradRule = {
  op: 'Pow',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    const x = inputOf(ctx, 0);
    const p = inputOf(ctx, 1);
    return [
      ctx.needs[0] ? mul(dy, mul(p, pow(x, sub(p, 1)))) : undefined,
      ctx.needs[1] ? mul(dy, mul(ctx.outputs[0], log(x))) : undefined,
    ];
  },
};
