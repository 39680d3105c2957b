/**
 * Causal scaled dot-product attention softmax(q·kᵀ/√d, j ≤ i)·v for the graph tests, assembled as
 * the models assemble theirs (src/model/gpt2/block.ts, src/model/llama/attention.ts): q·kᵀ, the
 * 1/√d scale, `causalMask` (joined with a key padding mask when given) and `maskedSoftmax`, then
 * the product with v.
 */
import type { Value } from '../../../src/graph/builder.js';
import { causalMask, maskedSoftmax } from '../../../src/graph/nn/attention.js';
import { logicalAnd } from '../../../src/graph/ops/logical.js';
import { matMul } from '../../../src/graph/ops/matMul.js';
import { mul } from '../../../src/graph/ops/mul.js';
import { transposeLast2 } from '../../../src/graph/ops/transpose.js';

/** q `[..., seq, d]`, k `[..., seq, d]`, v `[..., seq, dv]`; `pad` is bool, broadcastable to `[..., seq, seq]`, true = attend. */
export function causalAttention(q: Value, k: Value, v: Value, pad?: Value): Value {
  const d = q.shape[q.rank - 1];
  if (typeof d !== 'number') throw new Error(`causalAttention: head dim of q ${q.toString()} must be a number`);
  const scores = mul(matMul(q, transposeLast2(k)), 1 / Math.sqrt(d));
  const causal = causalMask(q, q.shape[q.rank - 2]);
  return matMul(maskedSoftmax(scores, pad === undefined ? causal : logicalAnd(pad, causal)), v);
}
