/** Unsqueeze (insert size-1 axes). */
import type { Value } from '../builder.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { normalizeAxes, type Dim } from '../shape.js';
import { int64s } from './common.js';
import { reshapeAs } from './reshape.js';

/** Inserts size-1 axes at `axes` (positions in the output). */
export function unsqueeze(x: Value, axes: number | readonly number[]): Value {
  const list = typeof axes === 'number' ? [axes] : axes;
  const rank = x.rank + list.length;
  const at = normalizeAxes('unsqueeze', 'axes', list, rank);
  const shape: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) shape.push(at.includes(i) ? 1 : x.shape[k++]);
  return x.graph.node('Unsqueeze', [x, int64s(x.graph, at)], {}, [{ dtype: x.dtype, shape }], 'unsqueeze')[0];
}

/** d unsqueeze(x) = dy reshaped back to x. */
export const unsqueezeGrad: GradRule = {
  op: 'Unsqueeze',
  grad: (ctx) => [reshapeAs(dyOf(ctx), inputOf(ctx, 0))],
};
