/** ReduceMax over given axes. Not differentiable here: use it only off the gradient path. */
import type { Value } from '../builder.js';
import { reduce } from './reduce.js';

/** Maximum over `axes` (all axes when omitted). Has no gradient rule. */
export function reduceMax(x: Value, axes?: number | readonly number[], keepDims = false): Value {
  return reduce('ReduceMax', 'reduceMax', x, axes, keepDims);
}
