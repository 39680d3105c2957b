/** Reshape to a target of numbers, symbols and at most one -1. */
import type { Value } from '../builder.js';
import type { TargetDim } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { canonicalDim, dimEquals, divDims, formatShape, numel, type Dim } from '../shape.js';

/**
 * Reshapes x. Target dims are numbers, symbols or symbolic products (read at run time from the
 * inputs that declared them) and at most one -1, inferred at build time (possibly symbolic:
 * `[batch, seq, 768]` → `[-1, 768]` gives `[batch*seq, 768]`). The element count must provably match.
 */
export function reshape(x: Value, dims: readonly TargetDim[]): Value {
  const total = numel(x.shape);
  const unknown = dims.filter((d) => d === -1).length;
  check(unknown <= 1, () => `reshape: target ${formatShape(dims)} has more than one -1`);
  check(dims.every((d) => d === -1 || typeof d === 'string' || (Number.isInteger(d) && d > 0)), () => `reshape: target ${formatShape(dims)} has a dim that is not a positive integer, a symbol or -1`);
  const known = numel(dims.filter((d) => d !== -1));
  let out: Dim[];
  if (unknown === 1) {
    const inferred = divDims(total, known);
    check(inferred !== undefined, () => `reshape: cannot infer -1 in ${formatShape(dims)} from x ${x.toString()} (${String(total)} elements)`);
    out = dims.map((d) => (d === -1 ? inferred : canonicalDim(d)));
  } else {
    check(dimEquals(total, known), () => `reshape: x ${x.toString()} has ${String(total)} elements, target ${formatShape(dims)} has ${String(known)}`);
    out = dims.map(canonicalDim);
  }
  return x.graph.node('Reshape', [x, x.graph.dimsTensor(dims, x)], {}, [{ dtype: x.dtype, shape: out }], 'reshape')[0];
}

/** Reshapes x to the run-time shape of `like` (same element count; used by gradient rules). */
export function reshapeAs(x: Value, like: Value): Value {
  check(dimEquals(numel(x.shape), numel(like.shape)), () => `reshapeAs: ${x.toString()} and ${like.toString()} differ in size`);
  return x.graph.node('Reshape', [x, x.graph.shapeOf(like)], {}, [{ dtype: x.dtype, shape: like.shape }], 'reshape')[0];
}

/** d reshape(x) = reshape(dy, shape(x)). */
export const reshapeGrad: GradRule = {
  op: 'Reshape',
  grad: (ctx) => [reshapeAs(dyOf(ctx), inputOf(ctx, 0))],
};
