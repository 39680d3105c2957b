/** Expand (broadcast to a shape): what gradient rules use to broadcast a reduced gradient back. */
import type { Value } from '../builder.js';
import { broadcastShapes, shapeEquals } from '../shape.js';

/** Broadcasts x to the run-time shape of `like` (used by gradient rules). */
export function expandAs(x: Value, like: Value): Value {
  const out = broadcastShapes('expandAs', [{ name: 'x', shape: x.shape }, { name: 'like', shape: like.shape }]);
  if (shapeEquals(out, x.shape)) return x;
  return x.graph.node('Expand', [x, x.graph.shapeOf(like)], {}, [{ dtype: x.dtype, shape: out }], 'expand')[0];
}
