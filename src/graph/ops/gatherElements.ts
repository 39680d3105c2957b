/** GatherElements: pick one element per position along an axis. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { formatShape, normalizeAxis } from '../shape.js';
import { checkIndex, graphOf } from './common.js';
import { zerosLike } from './constantOfShape.js';
import { scatterElements } from './scatterElements.js';

/** `out[i][j] = data[i][indices[i][j]]` (for axis 1); the output has the shape of `indices`. */
export function gatherElements(data: Value, indices: Value, axis: number): Value {
  const g = graphOf('gatherElements', data, indices);
  checkIndex('gatherElements', 'indices', indices);
  check(indices.rank === data.rank, () => `gatherElements: indices ${formatShape(indices.shape)} and data ${formatShape(data.shape)} differ in rank`);
  const ax = normalizeAxis('gatherElements', 'axis', axis, data.rank);
  return g.node('GatherElements', [data, indices], { axis: ax }, [{ dtype: data.dtype, shape: indices.shape }], 'gatherElements')[0];
}

/** d data = ScatterElements(zeros, indices, dy, reduction='add'). */
export const gatherElementsGrad: GradRule = {
  op: 'GatherElements',
  grad: (ctx) => {
    const axis = ctx.node.attrs.axis as number;
    return [scatterElements(zerosLike(inputOf(ctx, 0)), inputOf(ctx, 1), dyOf(ctx), axis, 'add'), undefined];
  },
};
