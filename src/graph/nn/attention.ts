/** Attention building blocks: masks, masked softmax, scaled dot-product attention. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { checkFloat } from '../ops/common.js';
import { greaterOrEqual, logicalAnd } from '../ops/logical.js';
import { matMul } from '../ops/matMul.js';
import { mul } from '../ops/mul.js';
import { arange } from '../ops/range.js';
import { softmax } from '../ops/softmax.js';
import { transposeLast2 } from '../ops/transpose.js';
import { unsqueeze } from '../ops/unsqueeze.js';
import { where } from '../ops/where.js';
import { dimEquals, type Dim } from '../shape.js';

/** The additive stand-in for −∞: large enough to zero a softmax entry, small enough not to overflow. */
export const MASKED = -1e9;

/** Bool `[seq, seq]`, true where query i may attend key j (j ≤ i). `seq` may be a symbol. */
export function causalMask(like: Value, seq: Dim): Value {
  const r = arange(like, seq);
  return greaterOrEqual(unsqueeze(r, 1), unsqueeze(r, 0));
}

/**
 * Softmax along the last axis with `mask` (bool, broadcastable; true = keep) applied as
 * `where(mask, x, −1e9)`: masked entries get exactly zero probability and zero gradient.
 */
export function maskedSoftmax(x: Value, mask?: Value): Value {
  checkFloat('maskedSoftmax', 'x', x);
  if (mask === undefined) return softmax(x, -1);
  check(mask.dtype === 'bool', () => `maskedSoftmax: mask must be bool, got ${mask.toString()}`);
  return softmax(where(mask, x, MASKED), -1);
}

export interface AttentionOptions {
  /** Bool mask broadcastable to `[..., seqQ, seqK]`, true = attend (e.g. padding). */
  mask?: Value;
  /** Add the causal mask (query i sees keys ≤ i); needs seqQ = seqK. */
  causal?: boolean;
}

/** `softmax(q·kᵀ/√d + mask)·v` for q `[..., seqQ, d]`, k `[..., seqK, d]`, v `[..., seqK, dv]`. */
export function scaledDotProductAttention(q: Value, k: Value, v: Value, options: AttentionOptions = {}): Value {
  const d = q.shape[q.rank - 1];
  check(typeof d === 'number', () => `attention: head dim of q ${q.toString()} must be a number`);
  const scores = mul(matMul(q, transposeLast2(k)), 1 / Math.sqrt(d));
  let mask = options.mask;
  if (options.causal === true) {
    const seq = q.shape[q.rank - 2];
    check(dimEquals(seq, k.shape[k.rank - 2]), () => `attention: causal needs seqQ = seqK, got q ${q.toString()} and k ${k.toString()}`);
    const causal = causalMask(q, seq);
    mask = mask === undefined ? causal : logicalAnd(mask, causal);
  }
  return matMul(maskedSoftmax(scores, mask), v);
}
