/** LogSoftmax along one axis (numerically stable in onnxruntime). */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { normalizeAxis } from '../shape.js';
import { checkFloat } from './common.js';
import { exp } from './exp.js';
import { mul } from './mul.js';
import { reduceSum } from './reduceSum.js';
import { sub } from './sub.js';

/** `x − logsumexp(x)` along `axis` (default last). */
export function logSoftmax(x: Value, axis = -1): Value {
  checkFloat('logSoftmax', 'x', x);
  const ax = normalizeAxis('logSoftmax', 'axis', axis, x.rank);
  return x.graph.node('LogSoftmax', [x], { axis: ax }, [{ dtype: x.dtype, shape: x.shape }], 'logSoftmax')[0];
}

/** d logSoftmax = dy − softmax · Σ dy along the axis (softmax = exp(y)). */
export const logSoftmaxGrad: GradRule = {
  op: 'LogSoftmax',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    const axis = ctx.node.attrs.axis as number;
    return [sub(dy, mul(exp(ctx.outputs[0]), reduceSum(dy, axis, true)))];
  },
};
