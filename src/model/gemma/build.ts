/**
 * Gemma 2 and Gemma 3 text models as causal-LM graphs, HF's `Gemma2ForCausalLM` /
 * `Gemma3ForCausalLM`: embeddings × √hidden → N × (sandwich-normed attention, sandwich-normed GeGLU
 * MLP) → norm → lm_head (tied) → final soft cap, with the shifted next-token loss. Every norm is
 * Gemma's RMSNorm `x/√(mean x² + ε)·(1 + w)`; attention scales by `query_pre_attn_scalar^-0.5`,
 * soft-caps its scores (Gemma 2), slides its window on alternate layers, and (Gemma 3) normalises
 * each q and k head and uses a local RoPE base on sliding layers.
 */
import type { Value } from '../../graph/builder.js';
import { causalMask } from '../../graph/nn/attention.js';
import { crossEntropy } from '../../graph/nn/crossEntropy.js';
import { geluTanh } from '../../graph/nn/gelu.js';
import { rmsNorm } from '../../graph/nn/rmsNorm.js';
import { add } from '../../graph/ops/add.js';
import { cast } from '../../graph/ops/cast.js';
import { div } from '../../graph/ops/div.js';
import { gather } from '../../graph/ops/gather.js';
import { less, logicalAnd } from '../../graph/ops/logical.js';
import { mul } from '../../graph/ops/mul.js';
import { arange } from '../../graph/ops/range.js';
import { tanh } from '../../graph/ops/tanh.js';
import { unsqueeze } from '../../graph/ops/unsqueeze.js';
import type { Dim } from '../../graph/shape.js';
import { ModelError } from '../errors.js';
import { multiHeadAttention } from '../llama/attention.js';
import { decoderScaffold, llamaModulePaths, shiftLabels, type LlamaBuildOptions } from '../llama/build.js';
import { ropeTables } from '../llama/rope.js';
import type { ModelGraph } from '../types.js';
import { parseGemmaConfig, type GemmaConfig } from './config.js';
import { GEMMA_UNREAD_ALLOWANCES, gemmaUnreadHint } from './unread.js';

/** `c·tanh(x/c)`: Gemma's soft cap of attention scores and logits. */
function softcap(x: Value, c: number): Value {
  return mul(tanh(div(x, c)), c);
}

function checkOptions(cfg: GemmaConfig, options: LlamaBuildOptions, seq: Dim): void {
  if (options.task !== 'causal-lm') throw new ModelError('UNSUPPORTED_OPTION', `${cfg.modelType}: task '${options.task}' is not supported (causal-lm only)`);
  if (typeof seq === 'number' && (!Number.isInteger(seq) || seq < 1 || seq > cfg.maxPositions)) {
    throw new ModelError('UNSUPPORTED_OPTION', `${cfg.modelType}: seqLen ${seq} must be an integer in [1, max_position_embeddings = ${cfg.maxPositions}]`);
  }
}

/** Builds the causal-LM graph of a Gemma 2 or Gemma 3 text checkpoint (graph inputs named as the Llama build's). */
export function buildGemma(options: LlamaBuildOptions): ModelGraph {
  const cfg = parseGemmaConfig(options.config);
  const seq: Dim = options.seqLen ?? 'seq';
  checkOptions(cfg, options, seq);
  const { g, inputIds, attentionMask, labels, seed, proj, attnDropout, inputs, dtype } = decoderScaffold(options, cfg, llamaModulePaths(cfg.layers), seq);
  /** Gemma's RMSNorm: the stored weight is the offset from 1. */
  const norm = (x: Value, name: string, width: number): Value => rmsNorm(x, add(inputs.weight(name, [width]), 1), cfg.rmsEps);

  const d = cfg.hidden;
  const hd = cfg.headDim;
  const qDim = cfg.heads * hd;
  const kvDim = cfg.kvHeads * hd;
  const ff = cfg.intermediate;
  let h = mul(gather(inputs.weight('model.embed_tokens.weight', [cfg.vocab, d]), inputIds), cfg.embedScale);

  // Masks, shared by all layers: padding [b, 1, 1, s] and causal [s, s] → [b, 1, s, s].
  const fullMask = logicalAnd(unsqueeze(cast(attentionMask, 'bool'), [1, 2]), causalMask(inputIds, seq));
  let windowMask = fullMask;
  const window = cfg.slidingWindow;
  if (window !== undefined && (typeof seq !== 'number' || seq > window)) {
    // Key j is visible from query i when i − j < window.
    const r = arange(inputIds, seq);
    windowMask = logicalAnd(fullMask, less(unsqueeze(r, 1), add(unsqueeze(r, 0), window)));
  }
  const fullRope = ropeTables(g, cfg.rope.full, seq, cfg.maxPositions, dtype, inputIds, 'rope.full');
  const slidingRope = cfg.rope.sliding === cfg.rope.full ? fullRope : ropeTables(g, cfg.rope.sliding, seq, cfg.maxPositions, dtype, inputIds, 'rope.sliding');
  const shape = { heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: hd };

  for (let l = 0; l < cfg.layers; l++) {
    // Each block is one recomputation segment (GraphBuilder.segment).
    g.segment(() => {
      const p = `model.layers.${l}`;
      const sliding = cfg.slidingLayers[l];
      const x = norm(h, `${p}.input_layernorm.weight`, d);
      const q = proj(x, `${p}.self_attn.q_proj`, d, qDim, cfg.attentionBias);
      const k = proj(x, `${p}.self_attn.k_proj`, d, kvDim, cfg.attentionBias);
      const v = proj(x, `${p}.self_attn.v_proj`, d, kvDim, cfg.attentionBias);
      const headNorms = cfg.qkNorm ?
        {
          qNorm: (t: Value): Value => norm(t, `${p}.self_attn.q_norm.weight`, hd),
          kNorm: (t: Value): Value => norm(t, `${p}.self_attn.k_norm.weight`, hd),
        } :
        {};
      const attn = multiHeadAttention(q, k, v, shape, {
        mask: sliding ? windowMask : fullMask,
        rope: sliding ? slidingRope : fullRope,
        scale: cfg.attentionScale,
        ...(cfg.attentionSoftcap !== undefined ? { softcap: cfg.attentionSoftcap } : {}),
        ...headNorms,
        ...(attnDropout !== undefined ? { dropout: attnDropout } : {}),
      });
      h = add(h, norm(proj(attn, `${p}.self_attn.o_proj`, qDim, d, cfg.attentionBias), `${p}.post_attention_layernorm.weight`, d));
      const y = norm(h, `${p}.pre_feedforward_layernorm.weight`, d);
      const gate = proj(y, `${p}.mlp.gate_proj`, d, ff, false);
      const up = proj(y, `${p}.mlp.up_proj`, d, ff, false);
      const mlp = proj(mul(geluTanh(gate), up), `${p}.mlp.down_proj`, ff, d, false);
      h = add(h, norm(mlp, `${p}.post_feedforward_layernorm.weight`, d));
    });
  }
  h = norm(h, 'model.norm.weight', d);
  let logits = proj(h, 'lm_head', d, cfg.vocab, false, cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  if (cfg.finalSoftcap !== undefined) logits = softcap(logits, cfg.finalSoftcap);
  const loss = crossEntropy(logits, shiftLabels(labels, attentionMask, seq));
  return inputs.finish({ graph: g, task: 'causal-lm', inputIds, attentionMask, labels, logits, loss, dropoutSeed: seed }, GEMMA_UNREAD_ALLOWANCES, (unread) => gemmaUnreadHint(cfg, unread));
}
