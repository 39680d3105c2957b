/** ScatterND (used by Gather's gradient). Not differentiable here. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { formatShape } from '../shape.js';
import { checkIndex, checkSameDType, graphOf } from './common.js';

export type ScatterReduction = 'none' | 'add' | 'mul' | 'max' | 'min';

/** Writes (or with `reduction`, combines) `updates` into a copy of `data` at `indices[..., k]`. */
export function scatterND(data: Value, indices: Value, updates: Value, reduction: ScatterReduction = 'none'): Value {
  const g = graphOf('scatterND', data, indices, updates);
  checkIndex('scatterND', 'indices', indices);
  checkSameDType('scatterND', data, 'data', updates, 'updates');
  const k = indices.shape[indices.rank - 1];
  check(typeof k === 'number' && k <= data.rank, () => `scatterND: indices ${formatShape(indices.shape)} must end in a number ≤ rank of data ${formatShape(data.shape)}`);
  check(updates.rank === indices.rank - 1 + data.rank - k, () => `scatterND: updates ${formatShape(updates.shape)} does not fit indices ${formatShape(indices.shape)} into data ${formatShape(data.shape)}`);
  return g.node('ScatterND', [data, indices, updates], { reduction }, [{ dtype: data.dtype, shape: data.shape }], 'scatterND')[0];
}
