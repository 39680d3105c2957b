/**
 * One GPT-2 transformer block (pre-norm): `h + attn(ln_1(h))`, then `h + mlp(ln_2(h))`, with
 * Conv1D projections (`[in, out]` weights, one Gemm each), the fused qkv split with one Split,
 * and attention as batched MatMuls over `[batch, heads, seq, head_dim]`.
 */
import type { Value } from '../../graph/builder.js';
import type { Dim } from '../../graph/shape.js';
import { add } from '../../graph/ops/add.js';
import { layerNormalization } from '../../graph/ops/layerNormalization.js';
import { matMul } from '../../graph/ops/matMul.js';
import { mul } from '../../graph/ops/mul.js';
import { reshape } from '../../graph/ops/reshape.js';
import { split } from '../../graph/ops/split.js';
import { transpose } from '../../graph/ops/transpose.js';
import { maskedSoftmax } from '../../graph/nn/attention.js';
import { geluErf, geluTanh } from '../../graph/nn/gelu.js';
import { linear } from '../../graph/nn/linear.js';
import { loraLinear } from '../../graph/nn/lora.js';
import type { Gpt2Config } from './config.js';

/** What a block needs from the model being built. */
export interface BlockContext {
  readonly config: Gpt2Config;
  readonly seq: Dim;
  /** Bool `[batch, 1, seq, seq]`: causal and padding mask, true = attend. */
  readonly attnMask: Value;
  /** A checkpoint tensor by HF name (`transformer.h.0.ln_1.weight`) and shape. */
  weight(name: string, shape: readonly number[]): Value;
  /** A Conv1D projection at a module path, LoRA-adapted when targeted. */
  conv1d(x: Value, path: string, inFeatures: number, outFeatures: number): Value;
  /** Training-mode dropout (identity when not training or the rate is 0). */
  dropout(x: Value, rate: number): Value;
}

/** `x·W + b` (Conv1D) or, with an adapter, `x·W + b + s·(x·Aᵀ)·Bᵀ`. */
export function conv1dProjection(x: Value, weight: Value, bias: Value, adapter: Parameters<typeof loraLinear>[4] | undefined): Value {
  return adapter === undefined ? linear(x, weight, bias, 'inOut') : loraLinear(x, weight, bias, 'inOut', adapter);
}

function layerNorm(ctx: BlockContext, x: Value, path: string): Value {
  const d = ctx.config.nEmbd;
  return layerNormalization(x, ctx.weight(`${path}.weight`, [d]), ctx.weight(`${path}.bias`, [d]), { epsilon: ctx.config.layerNormEpsilon });
}

function attention(ctx: BlockContext, x: Value, path: string): Value {
  const { nEmbd: d, nHead: heads, headDim } = ctx.config;
  const qkv = ctx.conv1d(x, `${path}.c_attn`, d, 3 * d);
  const [q, k, v] = split(qkv, -1, [d, d, d]);
  const toHeads = (t: Value, perm: readonly number[]): Value => transpose(reshape(t, ['batch', ctx.seq, heads, headDim]), perm);
  // k goes straight to [batch, heads, head_dim, seq]: q·kᵀ needs no further transpose.
  let scores = matMul(toHeads(q, [0, 2, 1, 3]), toHeads(k, [0, 2, 3, 1]));
  if (ctx.config.scaleAttnWeights) scores = mul(scores, 1 / Math.sqrt(headDim));
  const probs = ctx.dropout(maskedSoftmax(scores, ctx.attnMask), ctx.config.attnPdrop);
  const context = matMul(probs, toHeads(v, [0, 2, 1, 3]));
  const merged = reshape(transpose(context, [0, 2, 1, 3]), ['batch', ctx.seq, d]);
  return ctx.dropout(ctx.conv1d(merged, `${path}.c_proj`, d, d), ctx.config.residPdrop);
}

function mlp(ctx: BlockContext, x: Value, path: string): Value {
  const { nEmbd: d, nInner: inner } = ctx.config;
  const hidden = ctx.conv1d(x, `${path}.c_fc`, d, inner);
  const act = ctx.config.activation === 'gelu' ? geluErf(hidden) : geluTanh(hidden);
  return ctx.dropout(ctx.conv1d(act, `${path}.c_proj`, inner, d), ctx.config.residPdrop);
}

/** Block `layer` applied to the residual stream `h` (`[batch, seq, n_embd]`). */
export function gpt2Block(ctx: BlockContext, h: Value, layer: number): Value {
  const p = `transformer.h.${layer}`;
  const afterAttn = add(h, attention(ctx, layerNorm(ctx, h, `${p}.ln_1`), `${p}.attn`));
  return add(afterAttn, mlp(ctx, layerNorm(ctx, afterAttn, `${p}.ln_2`), `${p}.mlp`));
}
