/** Squeeze (remove size-1 axes). */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { normalizeAxes } from '../shape.js';
import { int64s } from './common.js';
import { reshapeAs } from './reshape.js';

/** Removes the axes `axes`, each of which must have the literal size 1. */
export function squeeze(x: Value, axes: number | readonly number[]): Value {
  const at = normalizeAxes('squeeze', 'axes', typeof axes === 'number' ? [axes] : axes, x.rank);
  for (const a of at) check(x.shape[a] === 1, () => `squeeze: axis ${a} of x ${x.toString()} is not 1`);
  const shape = x.shape.filter((_, i) => !at.includes(i));
  return x.graph.node('Squeeze', [x, int64s(x.graph, at)], {}, [{ dtype: x.dtype, shape }], 'squeeze')[0];
}

/** d squeeze(x) = dy reshaped back to x. */
export const squeezeGrad: GradRule = {
  op: 'Squeeze',
  grad: (ctx) => [reshapeAs(dyOf(ctx), inputOf(ctx, 0))],
};
