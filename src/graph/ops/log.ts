/** Log, elementwise. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { unary } from './unary.js';
import { div } from './div.js';
/** Natural logarithm. */
export function log(x: Value): Value {
  return unary('Log', 'log', x);
}

/** d log x = dy / x. */
export const logGrad: GradRule = {
  op: 'Log',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    return [div(dy, inputOf(ctx, 0))];
  },
};
