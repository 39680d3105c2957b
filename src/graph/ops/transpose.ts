/** Transpose by a permutation. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf } from '../gradRule.js';
import { iota } from './common.js';

/** Permutes the axes of x (reverses them when `perm` is omitted, like ONNX). */
export function transpose(x: Value, perm?: readonly number[]): Value {
  const p = perm ?? iota(x.rank).reverse();
  check(p.length === x.rank && [...p].sort((a, b) => a - b).every((v, i) => v === i), () => `transpose: perm [${p.join(', ')}] is not a permutation of ${x.rank} axes (x is ${x.toString()})`);
  return x.graph.node('Transpose', [x], { perm: p }, [{ dtype: x.dtype, shape: p.map((i) => x.shape[i]) }], 'transpose')[0];
}

/** Swaps the last two axes (the matrix transpose of a batch of matrices). */
export function transposeLast2(x: Value): Value {
  check(x.rank >= 2, () => `transposeLast2: ${x.toString()} has fewer than 2 dims`);
  const p = iota(x.rank);
  [p[x.rank - 2], p[x.rank - 1]] = [p[x.rank - 1], p[x.rank - 2]];
  return transpose(x, p);
}

/** d transpose(x, p) = transpose(dy, p⁻¹). */
export const transposeGrad: GradRule = {
  op: 'Transpose',
  grad: (ctx) => {
    const perm = ctx.node.attrs.perm as readonly number[];
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => {
      inverse[p] = i;
    });
    return [transpose(dyOf(ctx), inverse)];
  },
};
