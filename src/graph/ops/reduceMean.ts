/** ReduceMean over given axes. */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { divDims, numel } from '../shape.js';
import { cast } from './cast.js';
import { div } from './div.js';
import { expandAs } from './expand.js';
import { mul } from './mul.js';
import { reduce, reducedAxes } from './reduce.js';
import { unsqueeze } from './unsqueeze.js';

/** Mean over `axes` (all axes when omitted). */
export function reduceMean(x: Value, axes?: number | readonly number[], keepDims = false): Value {
  return reduce('ReduceMean', 'reduceMean', x, axes, keepDims);
}

/** d/dx mean(x) = dy / n, broadcast back; n is read at run time when it is symbolic. */
export const reduceMeanGrad: GradRule = {
  op: 'ReduceMean',
  grad: (ctx) => {
    const x = inputOf(ctx, 0);
    const y = ctx.outputs[0];
    let dy = dyOf(ctx);
    const axes = reducedAxes(x, ctx.inputs[1]);
    if (ctx.node.attrs.keepdims === 0 && axes.length > 0) dy = unsqueeze(dy, axes);
    const count = divDims(numel(x.shape), numel(y.shape));
    const g = x.graph;
    const scaled = typeof count === 'number'
      ? mul(dy, 1 / count)
      : div(dy, cast(div(g.sizeOf(x), g.sizeOf(y)), x.dtype));
    return [expandAs(scaled, x)];
  },
};
