/** Gemm: `alpha·op(A)·op(B) + beta·C` on matrices, op = optional transpose. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { broadcastShapes, dimEquals, formatShape } from '../shape.js';
import { checkFloatOperands, checkRank, graphOf } from './common.js';
import { mul } from './mul.js';

export interface GemmOptions {
  alpha?: number;
  beta?: number;
  transA?: boolean;
  transB?: boolean;
}

/** `alpha·op(a)·op(b) + beta·c` with a, b 2-D and c broadcastable to the `[m, n]` result. */
export function gemm(a: Value, b: Value, c?: Value, options: GemmOptions = {}): Value {
  const g = graphOf('gemm', a, b, c);
  checkFloatOperands('gemm', { a, b, c });
  checkRank('gemm', 'a', a, 2);
  checkRank('gemm', 'b', b, 2);
  const { alpha = 1, beta = 1, transA = false, transB = false } = options;
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape;
  const [k2, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
  check(dimEquals(k, k2), () => `gemm: op(a) of ${formatShape(a.shape)} has inner dim ${String(k)}, op(b) of ${formatShape(b.shape)} has ${String(k2)}`);
  if (c !== undefined) {
    const out = broadcastShapes('gemm', [{ name: 'result', shape: [m, n] }, { name: 'c', shape: c.shape }]);
    check(out.length === 2 && dimEquals(out[0], m) && dimEquals(out[1], n), () => `gemm: c ${formatShape(c.shape)} does not broadcast to [${String(m)}, ${String(n)}]`);
  }
  const attrs = { alpha, beta, transA: transA ? 1 : 0, transB: transB ? 1 : 0 };
  return g.node('Gemm', c === undefined ? [a, b] : [a, b, c], attrs, [{ dtype: a.dtype, shape: [m, n] }], 'gemm')[0];
}

/**
 * With A' = op(A), B' = op(B): dA' = α·dy·B'ᵀ and dB' = α·A'ᵀ·dy, each transposed back when the
 * forward transposed its input, all as Gemm flags (no Transpose nodes). dC = β·dy summed to C.
 */
export const gemmGrad: GradRule = {
  op: 'Gemm',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    const a = inputOf(ctx, 0);
    const b = inputOf(ctx, 1);
    const c = ctx.inputs[2];
    const alpha = (ctx.node.attrs.alpha as number | undefined) ?? 1;
    const beta = (ctx.node.attrs.beta as number | undefined) ?? 1;
    const tA = ctx.node.attrs.transA === 1;
    const tB = ctx.node.attrs.transB === 1;
    const da = !ctx.needs[0] ?
      undefined
      : tA ?
      gemm(b, dy, undefined, { alpha, transA: tB, transB: true })
      : gemm(dy, b, undefined, { alpha, transB: !tB });
    const db = !ctx.needs[1] ?
      undefined
      : tB ?
      gemm(dy, a, undefined, { alpha, transA: true, transB: tA })
      : gemm(a, dy, undefined, { alpha, transA: !tA });
    const dc = c === undefined || !ctx.needs[2] ? undefined : beta === 1 ? dy : mul(dy, beta);
    return [da, db, dc];
  },
};
