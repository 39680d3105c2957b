/** Shared shape logic of the reductions (ReduceSum, ReduceMean, ReduceMax; opset 18 axes input). */
import type { Value } from '../builder.js';
import type { Dim } from '../shape.js';
import { normalizeAxes } from '../shape.js';
import { check } from '../errors.js';
import { constantInts, int64s, iota } from './common.js';

export type ReduceOp = 'ReduceSum' | 'ReduceMean' | 'ReduceMax';

/** Builds a reduction over `axes` (all axes when omitted). */
export function reduce(op: ReduceOp, name: string, x: Value, axes: number | readonly number[] | undefined, keepDims: boolean): Value {
  const g = x.graph;
  check(axes === undefined || typeof axes === 'number' || axes.length > 0, () => `${name}: axes is empty (omit it to reduce over all axes)`);
  const list = axes === undefined ? iota(x.rank) : normalizeAxes(name, 'axes', typeof axes === 'number' ? [axes] : axes, x.rank);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!list.includes(i)) shape.push(d);
    else if (keepDims) shape.push(1);
  });
  const inputs = list.length === 0 ? [x] : [x, int64s(g, list)];
  return g.node(op, inputs, { keepdims: keepDims ? 1 : 0 }, [{ dtype: x.dtype, shape }], name)[0];
}

/** The normalized axes of a reduction node (all axes when the node has no axes input). */
export function reducedAxes(x: Value, axesInput: Value | undefined): number[] {
  if (axesInput === undefined) return iota(x.rank);
  const axes = constantInts(axesInput);
  check(axes !== undefined, () => `reduction: the axes of ${x.name} are not an int64 constant`);
  return axes.map((a) => (a < 0 ? a + x.rank : a));
}
