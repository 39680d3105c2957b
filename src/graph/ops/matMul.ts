/** MatMul: batched matrix product with numpy broadcasting of the batch dims. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { broadcastShapes, dimEquals, formatShape } from '../shape.js';
import { checkFloatOperands, checkRank, graphOf } from './common.js';
import { gemm } from './gemm.js';
import { reshape } from './reshape.js';
import { transposeLast2 } from './transpose.js';

/** `a @ b` for a `[..., m, k]` and b `[..., k, n]`; batch dims broadcast. Both need rank ≥ 2. */
export function matMul(a: Value, b: Value): Value {
  const g = graphOf('matMul', a, b);
  checkFloatOperands('matMul', { a, b });
  checkRank('matMul', 'a', a, 2, true);
  checkRank('matMul', 'b', b, 2, true);
  const k = a.shape[a.rank - 1];
  const k2 = b.shape[b.rank - 2];
  check(dimEquals(k, k2), () => `matMul: a ${formatShape(a.shape)} has inner dim ${String(k)}, b ${formatShape(b.shape)} has ${String(k2)}`);
  const batch = broadcastShapes('matMul', [{ name: 'a', shape: a.shape.slice(0, -2) }, { name: 'b', shape: b.shape.slice(0, -2) }]);
  return g.node('MatMul', [a, b], {}, [{ dtype: a.dtype, shape: [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]] }], 'matMul')[0];
}

/**
 * dA = dy·bᵀ, dB = aᵀ·dy, summed over broadcast batch dims. When b is a plain matrix and a is
 * batched (x @ W), dB is one Gemm over the flattened batch (no per-batch intermediate).
 */
export const matMulGrad: GradRule = {
  op: 'MatMul',
  grad: (ctx) => {
    const dy = dyOf(ctx);
    const a = inputOf(ctx, 0);
    const b = inputOf(ctx, 1);
    const da = ctx.needs[0] ? matMul(dy, transposeLast2(b)) : undefined;
    let db: Value | undefined;
    if (ctx.needs[1]) {
      if (b.rank === 2 && a.rank > 2) {
        const k = a.shape[a.rank - 1];
        const n = b.shape[1];
        db = gemm(reshape(a, [-1, k]), reshape(dy, [-1, n]), undefined, { transA: true });
      } else {
        db = matMul(transposeLast2(a), dy);
      }
    }
    return [da, db];
  },
};
