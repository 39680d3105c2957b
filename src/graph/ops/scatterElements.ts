/** ScatterElements (used by GatherElements' gradient). Not differentiable here. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { formatShape, normalizeAxis } from '../shape.js';
import { checkIndex, checkSameDType, graphOf } from './common.js';
import type { ScatterReduction } from './scatterND.js';

/** Writes (or combines) `updates` into a copy of `data` at `indices` along `axis`. */
export function scatterElements(data: Value, indices: Value, updates: Value, axis: number, reduction: ScatterReduction = 'none'): Value {
  const g = graphOf('scatterElements', data, indices, updates);
  checkIndex('scatterElements', 'indices', indices);
  checkSameDType('scatterElements', data, 'data', updates, 'updates');
  check(indices.rank === data.rank && updates.rank === data.rank, () => `scatterElements: data ${formatShape(data.shape)}, indices ${formatShape(indices.shape)} and updates ${formatShape(updates.shape)} differ in rank`);
  const ax = normalizeAxis('scatterElements', 'axis', axis, data.rank);
  return g.node('ScatterElements', [data, indices, updates], { axis: ax, reduction }, [{ dtype: data.dtype, shape: data.shape }], 'scatterElements')[0];
}
