/** Gather (embedding lookup) along an axis. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { normalizeAxis } from '../shape.js';
import { checkIndex, graphOf } from './common.js';
import { zerosLike } from './constantOfShape.js';
import { scatterND } from './scatterND.js';
import { unsqueeze } from './unsqueeze.js';

/** `data` indexed by `indices` along `axis`: shape `data[:axis] + indices + data[axis+1:]`. */
export function gather(data: Value, indices: Value, axis = 0): Value {
  const g = graphOf('gather', data, indices);
  checkIndex('gather', 'indices', indices);
  const ax = normalizeAxis('gather', 'axis', axis, data.rank);
  const shape = [...data.shape.slice(0, ax), ...indices.shape, ...data.shape.slice(ax + 1)];
  return g.node('Gather', [data, indices], { axis: ax }, [{ dtype: data.dtype, shape }], 'gather')[0];
}

/**
 * d data = ScatterND(zeros, indices[..., None], dy, reduction='add'): rows hit by repeated
 * indices accumulate (onnxruntime's CPU kernel adds duplicates in sequence). Axis 0 only.
 */
export const gatherGrad: GradRule = {
  op: 'Gather',
  grad: (ctx) => {
    const data = inputOf(ctx, 0);
    const axis = (ctx.node.attrs.axis as number | undefined) ?? 0;
    check(axis === 0, () => `gather: the gradient supports axis 0 only (embedding lookup), got axis ${axis} for ${data.toString()}`);
    const indices = inputOf(ctx, 1);
    return [scatterND(zerosLike(data), unsqueeze(indices, indices.rank), dyOf(ctx), 'add'), undefined];
  },
};
