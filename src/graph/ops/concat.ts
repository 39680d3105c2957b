/** Concat along one axis. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { dimEquals, formatShape, normalizeAxis, type Dim } from '../shape.js';
import { graphOf } from './common.js';
import { split } from './split.js';

/**
 * Joins `xs` along `axis`; all other dims must agree. The joined dim is their sum when all are
 * numbers, else a fresh symbol named after the output (readable at run time from it).
 */
export function concat(xs: readonly Value[], axis: number): Value {
  check(xs.length > 0, () => 'concat: needs at least one input');
  const g = graphOf('concat', ...xs);
  const first = xs[0];
  const ax = normalizeAxis('concat', 'axis', axis, first.rank);
  xs.forEach((x, i) => {
    check(x.dtype === first.dtype, () => `concat: input ${i} is ${x.dtype}, input 0 is ${first.dtype}`);
    check(x.rank === first.rank && x.shape.every((d, j) => j === ax || dimEquals(d, first.shape[j])), () => `concat: input ${i} ${formatShape(x.shape)} does not match input 0 ${formatShape(first.shape)} off axis ${ax}`);
  });
  const sizes = xs.map((x) => x.shape[ax]);
  const joined: Dim = sizes.every((d) => typeof d === 'number')
    ? (sizes as number[]).reduce((a, b) => a + b, 0)
    : `concat${g.nodes.length}_axis${ax}`;
  const shape = first.shape.map((d, j) => (j === ax ? joined : d));
  const y = g.node('Concat', xs, { axis: ax }, [{ dtype: first.dtype, shape }], 'concat')[0];
  if (typeof joined === 'string') g.defineSymbol(joined, y, ax);
  return y;
}

/** d concat(xs) = dy split back into the input sizes. */
export const concatGrad: GradRule = {
  op: 'Concat',
  grad: (ctx) => {
    const ax = ctx.node.attrs.axis as number;
    const parts = split(dyOf(ctx), ax, ctx.inputs.map((x) => x!.shape[ax]));
    return parts.map((p, i) => (ctx.needs[i] ? p : undefined));
  },
};
