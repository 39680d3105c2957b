/** Expand (broadcast to a shape). */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { broadcastShapes, shapeEquals, type Shape } from '../shape.js';

/** Broadcasts x to `shape` (numpy rules; symbols are read at run time). */
export function expand(x: Value, shape: Shape): Value {
  const out = broadcastShapes('expand', [{ name: 'x', shape: x.shape }, { name: 'shape', shape }]);
  return x.graph.node('Expand', [x, x.graph.dimsTensor(shape, x)], {}, [{ dtype: x.dtype, shape: out }], 'expand')[0];
}

/** Broadcasts x to the run-time shape of `like` (used by gradient rules). */
export function expandAs(x: Value, like: Value): Value {
  const out = broadcastShapes('expandAs', [{ name: 'x', shape: x.shape }, { name: 'like', shape: like.shape }]);
  if (shapeEquals(out, x.shape)) return x;
  return x.graph.node('Expand', [x, x.graph.shapeOf(like)], {}, [{ dtype: x.dtype, shape: out }], 'expand')[0];
}

/** d expand(x) = dy summed over the broadcast axes. */
export const expandGrad: GradRule = {
  op: 'Expand',
  grad: (ctx) => [dyOf(ctx)],
};
