/** Range: `[start, start+delta, …)` below `limit`, built from int64 scalars. Not differentiable. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { canonicalDim, type Dim } from '../shape.js';

/** `[0, 1, …, length-1]` as int64, `length` a number or symbol (read at run time). */
export function arange(like: Value, length: Dim): Value {
  const g = like.graph;
  const limit = g.node('Squeeze', [g.dimsTensor([length], like)], {}, [{ dtype: 'int64', shape: [] }], 'limit')[0];
  return range(g.scalar(0, 'int64'), limit, g.scalar(1, 'int64'), length);
}

/** Range over int64 scalars; `length` is the static (possibly symbolic) length of the result. */
export function range(start: Value, limit: Value, delta: Value, length: Dim): Value {
  for (const [name, v] of [['start', start], ['limit', limit], ['delta', delta]] as const) {
    check(v.rank === 0, () => `range: ${name} must be a scalar, got ${v.toString()}`);
  }
  return start.graph.node('Range', [start, limit, delta], {}, [{ dtype: start.dtype, shape: [canonicalDim(length)] }], 'range')[0];
}
