/** Softmax along one axis. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { normalizeAxis } from '../shape.js';
import { checkFloat } from './common.js';
import { mul } from './mul.js';
import { reduceSum } from './reduceSum.js';
import { sub } from './sub.js';

/** `exp(x) / sum(exp(x))` along `axis` (default last). For masked attention see nn/attention.ts. */
export function softmax(x: Value, axis = -1): Value {
  checkFloat('softmax', 'x', x);
  const ax = normalizeAxis('softmax', 'axis', axis, x.rank);
  return x.graph.node('Softmax', [x], { axis: ax }, [{ dtype: x.dtype, shape: x.shape }], 'softmax')[0];
}

/** d softmax = y · (dy − Σ dy·y) along the axis. */
export const softmaxGrad: GradRule = {
  op: 'Softmax',
  grad: (ctx) => {
    const y = ctx.outputs[0];
    const dy = dyOf(ctx);
    const axis = ctx.node.attrs.axis as number;
    return [mul(y, sub(dy, reduceSum(mul(dy, y), axis, true)))];
  },
};
