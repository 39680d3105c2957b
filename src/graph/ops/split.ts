/** Split along one axis into given sizes. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dimEquals, formatShape, normalizeAxis, type Dim } from '../shape.js';
import { concat } from './concat.js';
import { zerosLike } from './constantOfShape.js';

/** Splits x along `axis` into pieces of `sizes` (numbers or symbols); numeric sizes must sum to the axis. */
export function split(x: Value, axis: number, sizes: readonly Dim[]): Value[] {
  const ax = normalizeAxis('split', 'axis', axis, x.rank);
  check(sizes.length >= 1, () => 'split: sizes is empty');
  const dim = x.shape[ax];
  if (sizes.every((s) => typeof s === 'number')) {
    const sum = (sizes as number[]).reduce((a, b) => a + b, 0);
    check(dimEquals(sum, dim), () => `split: sizes [${sizes.join(', ')}] sum to ${sum}, axis ${ax} of x ${x.toString()} is ${String(dim)}`);
  } else {
    check(sizes.length > 1 || dimEquals(sizes[0], dim), () => `split: size ${String(sizes[0])} does not match axis ${ax} of ${formatShape(x.shape)}`);
  }
  const g = x.graph;
  const outputs = sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === ax ? s : d)) }));
  return g.node('Split', [x, g.dimsTensor(sizes, x)], { axis: ax }, outputs, 'split');
}

/** d split(x) = concat of the pieces' gradients, zeros for pieces that do not reach the loss. */
export const splitGrad: GradRule = {
  op: 'Split',
  grad: (ctx) => {
    const ax = ctx.node.attrs.axis as number;
    const parts = ctx.outputs.map((y, i) => ctx.dys[i] ?? zerosLike(y));
    return [concat(parts, ax)];
  },
};
