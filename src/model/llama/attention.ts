/**
 * Multi-head attention over projected q/k/v, with grouped-query attention (GQA): each key/value
 * head serves `heads / kvHeads` consecutive query heads, as HF's `repeat_kv` arranges them. The
 * k/v heads are never repeated in memory: the query heads of a group are folded into the rows of
 * one batched MatMul (`[b, kv, group·seq, hd] · [b, kv, hd, seq]`). Optional per-head norms of q
 * and k (Qwen3, Gemma 3) come before RoPE; RoPE may rotate only the leading dims of each head
 * (Phi-3's partial rotary); the score scale may differ from 1/√hd and the scores may be soft-capped
 * (Gemma's `query_pre_attn_scalar` and `attn_logit_softcapping`).
 */
import type { Value } from '../../graph/builder.js';
import { check } from '../../graph/errors.js';
import { maskedSoftmax } from '../../graph/nn/attention.js';
import { rope } from '../../graph/nn/rope.js';
import { concat } from '../../graph/ops/concat.js';
import { div } from '../../graph/ops/div.js';
import { matMul } from '../../graph/ops/matMul.js';
import { mul } from '../../graph/ops/mul.js';
import { reshape } from '../../graph/ops/reshape.js';
import { split } from '../../graph/ops/split.js';
import { tanh } from '../../graph/ops/tanh.js';
import { transpose } from '../../graph/ops/transpose.js';
import { unsqueeze } from '../../graph/ops/unsqueeze.js';
import { mulDims } from '../../graph/shape.js';

export interface AttentionShape {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

export interface AttentionInputs {
  /** Rank-4 bool mask broadcastable to `[batch, 1, seq, seq]` (true = attend), or undefined for none. */
  readonly mask?: Value;
  /**
   * RoPE tables `[seq, rotaryDim]` applied to the first rotaryDim dims of each q and k head (HF
   * `rotate_half` convention); the rest of the head passes through (rotaryDim = headDim: all of it).
   */
  readonly rope?: { readonly cos: Value; readonly sin: Value };
  /** Per-head norms over headDim (Qwen3's q_norm / k_norm), applied before RoPE. */
  readonly qNorm?: (q: Value) => Value;
  readonly kNorm?: (k: Value) => Value;
  /** Training-mode dropout on the attention probabilities. */
  readonly dropout?: (probs: Value) => Value;
  /** Factor on q·kᵀ; 1/√headDim when absent (Gemma: `query_pre_attn_scalar^-0.5`). */
  readonly scale?: number;
  /** Soft cap c of the scaled scores, `c·tanh(scores/c)`, before the mask (Gemma 2's `attn_logit_softcapping`). */
  readonly softcap?: number;
}

/** RoPE on the first rotaryDim (the tables' width) of the last axis of x; the remaining dims pass through. */
function partialRope(x: Value, cos: Value, sin: Value, hd: number): Value {
  const rd = cos.shape[cos.rank - 1];
  check(typeof rd === 'number' && rd <= hd && rd % 2 === 0, () => `attention: RoPE tables ${cos.toString()} must be at most ${hd} wide and even`);
  if (rd === hd) return rope(x, cos, sin);
  const [rot, pass] = split(x, -1, [rd, hd - rd]);
  return concat([rope(rot, cos, sin), pass], -1);
}

/**
 * `softmax(cap(scale·q·kᵀ) + mask)·v` per head (scale 1/√hd and no cap unless given). q `[batch,
 * seq, heads·hd]`, k and v `[batch, seq, kvHeads·hd]` (the projections' outputs); returns `[batch,
 * seq, heads·hd]` with heads in HF order.
 */
export function multiHeadAttention(q: Value, k: Value, v: Value, shape: AttentionShape, inputs: AttentionInputs = {}): Value {
  const { heads, kvHeads, headDim: hd } = shape;
  check(heads % kvHeads === 0, () => `attention: ${heads} heads are not a multiple of ${kvHeads} key/value heads`);
  check(q.rank === 3 && k.rank === 3 && v.rank === 3, () => `attention: q ${q.toString()}, k ${k.toString()}, v ${v.toString()} must be [batch, seq, features]`);
  check(inputs.mask === undefined || inputs.mask.rank === 4, () => `attention: mask ${inputs.mask?.toString() ?? ''} must have rank 4 ([batch, 1, seq, seq])`);
  const [b, s] = q.shape;
  const group = heads / kvHeads;
  let k4 = reshape(k, [b, s, kvHeads, hd]);
  let q5 = reshape(q, [b, s, kvHeads, group, hd]);
  if (inputs.kNorm !== undefined) k4 = inputs.kNorm(k4);
  if (inputs.qNorm !== undefined) q5 = inputs.qNorm(q5);
  if (inputs.rope !== undefined) {
    const { cos, sin } = inputs.rope;
    // Tables [seq, rd] become [seq, 1, rd] and [seq, 1, 1, rd] to broadcast over the head axes.
    k4 = partialRope(k4, unsqueeze(cos, 1), unsqueeze(sin, 1), hd);
    q5 = partialRope(q5, unsqueeze(cos, [1, 2]), unsqueeze(sin, [1, 2]), hd);
  }
  const rows = mulDims(group, s);
  const qT = reshape(transpose(q5, [0, 2, 3, 1, 4]), [b, kvHeads, rows, hd]);
  const kT = transpose(k4, [0, 2, 3, 1]);
  const vT = transpose(reshape(v, [b, s, kvHeads, hd]), [0, 2, 1, 3]);
  let scores = mul(matMul(qT, kT), inputs.scale ?? 1 / Math.sqrt(hd));
  if (inputs.softcap !== undefined) scores = mul(tanh(div(scores, inputs.softcap)), inputs.softcap);
  let probs: Value;
  if (group === 1) {
    probs = maskedSoftmax(scores, inputs.mask);
  } else {
    scores = reshape(scores, [b, kvHeads, group, s, s]);
    const mask = inputs.mask === undefined ? undefined : unsqueeze(inputs.mask, 2);
    probs = reshape(maskedSoftmax(scores, mask), [b, kvHeads, rows, s]);
  }
  if (inputs.dropout !== undefined) probs = inputs.dropout(probs);
  const ctx = matMul(probs, vT);
  const out = transpose(reshape(ctx, [b, kvHeads, group, s, hd]), [0, 3, 1, 2, 4]);
  return reshape(out, [b, s, heads * hd]);
}
