/** ReduceSum, and `sumToShape`, which autodiff uses to undo broadcasting once for every gradient rule. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { formatShape, shapeEquals, type Shape } from '../shape.js';
import { iota } from './common.js';
import { expandAs } from './expand.js';
import { reduce, reducedAxes } from './reduce.js';
import { unsqueeze } from './unsqueeze.js';

/** Sum over `axes` (all axes when omitted). */
export function reduceSum(x: Value, axes?: number | readonly number[], keepDims = false): Value {
  return reduce('ReduceSum', 'reduceSum', x, axes, keepDims);
}

/**
 * Sums `dy` down to `shape`, the shape of an input that was broadcast to `dy`'s shape: leading
 * extra axes are summed away, axes where `shape` has a literal 1 are summed with keepdims.
 */
export function sumToShape(dy: Value, shape: Shape): Value {
  if (shapeEquals(dy.shape, shape)) return dy;
  const lead = dy.rank - shape.length;
  check(lead >= 0, () => `sumToShape: gradient ${formatShape(dy.shape)} has fewer dims than ${formatShape(shape)}`);
  let r = lead > 0 ? reduceSum(dy, iota(lead), false) : dy;
  const ones = shape.flatMap((d, i) => (d === 1 && r.shape[i] !== 1 ? [i] : []));
  if (ones.length > 0) r = reduceSum(r, ones, true);
  check(shapeEquals(r.shape, shape), () => `sumToShape: cannot reduce ${formatShape(dy.shape)} to ${formatShape(shape)}`);
  return r;
}

/** d/dx sum(x) = broadcast of dy back to x's shape. */
export const reduceSumGrad: GradRule = {
  op: 'ReduceSum',
  grad: (ctx) => {
    const x = inputOf(ctx, 0);
    let dy = dyOf(ctx);
    if (ctx.node.attrs.keepdims === 0) {
      const axes = reducedAxes(x, ctx.inputs[1]);
      if (axes.length > 0) dy = unsqueeze(dy, axes);
    }
    return [expandAs(dy, x)];
  },
};
