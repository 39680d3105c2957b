/**
 * The Llama family (Llama, Mistral, Qwen2, Qwen3, Phi-3) as a causal-LM graph, HF's
 * `LlamaForCausalLM` and its relatives: embeddings → N × (RMSNorm → GQA self-attention with RoPE →
 * residual → RMSNorm → SwiGLU MLP → residual) → RMSNorm → lm_head (or the tied embeddings), with
 * the shifted next-token loss. Qwen3 adds per-head q/k RMSNorm; Phi-3 fuses q/k/v into `qkv_proj`
 * and gate/up into `gate_up_proj` (LoRA adapts the fused modules, as PEFT does).
 */
import { GraphBuilder, type Value } from '../../graph/builder.js';
import type { FloatDType } from '../../graph/dtype.js';
import { causalMask } from '../../graph/nn/attention.js';
import { crossEntropy } from '../../graph/nn/crossEntropy.js';
import { dropout } from '../../graph/nn/dropout.js';
import { linear } from '../../graph/nn/linear.js';
import { loraLinear } from '../../graph/nn/lora.js';
import { rmsNorm } from '../../graph/nn/rmsNorm.js';
import { silu } from '../../graph/nn/silu.js';
import { add } from '../../graph/ops/add.js';
import { cast } from '../../graph/ops/cast.js';
import { concat } from '../../graph/ops/concat.js';
import { fill } from '../../graph/ops/constantOfShape.js';
import { gather } from '../../graph/ops/gather.js';
import { less, logicalAnd } from '../../graph/ops/logical.js';
import { mul } from '../../graph/ops/mul.js';
import { arange } from '../../graph/ops/range.js';
import { split } from '../../graph/ops/split.js';
import { unsqueeze } from '../../graph/ops/unsqueeze.js';
import { where } from '../../graph/ops/where.js';
import type { Dim } from '../../graph/shape.js';
import { ModelError } from '../errors.js';
import { ALL_LINEAR } from '../targetModules.js';
import type { BuildOptions, ModelGraph } from '../types.js';
import { ModelInputs, adaptedPaths } from '../weights.js';
import { multiHeadAttention } from './attention.js';
import { parseLlamaConfig, type LlamaConfig } from './config.js';
import { ropeTables } from './rope.js';
import { LLAMA_UNREAD_ALLOWANCES, llamaUnreadHint } from './unread.js';

/** Graph input names of the data (weights are named by their HF names, LoRA factors `<path>.lora_A` / `<path>.lora_B`). */
export const LLAMA_INPUTS = { inputIds: 'input_ids', attentionMask: 'attention_mask', labels: 'labels', dropoutSeed: 'dropout_seed' } as const;

/** Build options plus the graph's float type (float64 for gradient checks; the trainer uses float32). */
export interface LlamaBuildOptions extends BuildOptions {
  readonly dtype?: FloatDType;
}

const SPLIT_MODULES = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];
const FUSED_MODULES = ['self_attn.qkv_proj', 'self_attn.o_proj', 'mlp.gate_up_proj', 'mlp.down_proj'];

/** The adaptable linear modules' PEFT paths, layer by layer (`lm_head` last); `fused`: Phi-3's qkv_proj and gate_up_proj. */
export function llamaModulePaths(layers: number, fused = false): string[] {
  const out: string[] = [];
  for (let l = 0; l < layers; l++) for (const m of fused ? FUSED_MODULES : SPLIT_MODULES) out.push(`model.layers.${l}.${m}`);
  out.push('lm_head');
  return out;
}

/**
 * Next-token labels: position t gets `labels[:, t+1]`, and −100 at the last position and where
 * the next token is padding (as GPT-2's build does), so cross-entropy over all positions equals
 * HF's `logits[:, :-1]` vs `labels[:, 1:]` without slicing the large logits.
 */
export function shiftLabels(labels: Value, mask: Value, seq: Dim): Value {
  const batch = labels.shape[0];
  const next = add(arange(labels, seq), 1);
  const nextLabels = gather(concat([labels, fill(labels, [batch, 1], -100, 'int64')], 1), next, 1);
  const nextIsToken = cast(gather(concat([mask, fill(mask, [batch, 1], 0, 'int64')], 1), next, 1), 'bool');
  return where(nextIsToken, nextLabels, -100);
}

function checkOptions(cfg: LlamaConfig, options: LlamaBuildOptions, seq: Dim): void {
  if (options.task !== 'causal-lm') throw new ModelError('UNSUPPORTED_OPTION', `${cfg.modelType}: task '${options.task}' is not supported (causal-lm only)`);
  if (typeof seq === 'number' && (!Number.isInteger(seq) || seq < 1 || seq > cfg.maxPositions)) {
    throw new ModelError('UNSUPPORTED_OPTION', `${cfg.modelType}: seqLen ${seq} must be an integer in [1, max_position_embeddings = ${cfg.maxPositions}]`);
  }
  if (options.training && (cfg.residDropout > 0 || cfg.embedDropout > 0)) {
    throw new ModelError('UNSUPPORTED_OPTION', `${cfg.modelType}: residual/embedding dropout (resid_pdrop ${cfg.residDropout}, embd_pdrop ${cfg.embedDropout}) is not supported in training; set them to 0 in config.json`);
  }
}

/** What a decoder build of the Llama lineage (Llama, Phi-3, Gemma) starts from. */
export interface DecoderScaffold {
  readonly g: GraphBuilder;
  readonly inputIds: Value;
  readonly attentionMask: Value;
  readonly labels: Value;
  /** The dropout seed input, when any dropout is on. */
  readonly seed: Value | undefined;
  readonly inputs: ModelInputs;
  readonly dtype: NonNullable<LlamaBuildOptions['dtype']>;
  readonly lora: LlamaBuildOptions['lora'];
  /** `nn.Linear` at `path` (`[out, in]` weight), LoRA-adapted (with LoRA dropout) when selected. */
  proj(x: Value, path: string, inF: number, outF: number, bias: boolean, weightName?: string): Value;
  /** Attention-probability dropout while training, or undefined. */
  readonly attnDropout: ((p: Value) => Value) | undefined;
}

/**
 * The graph, its data inputs (named as `LLAMA_INPUTS`), the dropout seed, the checkpoint inputs and
 * the LoRA-aware projection over `modulePaths` (the LoRA candidates; `lm_head` only when named, not
 * by `all-linear`), shared by every decoder of the Llama lineage. Dropout salts are drawn in call order.
 */
export function decoderScaffold(options: LlamaBuildOptions, cfg: { readonly modelType: string; readonly attentionDropout: number }, modulePaths: readonly string[], seq: Dim): DecoderScaffold {
  const dtype = options.dtype ?? 'float32';
  const trainAll = options.trainAll === true;
  const { lora } = options;
  const g = new GraphBuilder(cfg.modelType);
  const inputIds = g.input(LLAMA_INPUTS.inputIds, 'int64', ['batch', seq]);
  const attentionMask = g.input(LLAMA_INPUTS.attentionMask, 'int64', ['batch', seq]);
  const labels = g.input(LLAMA_INPUTS.labels, 'int64', ['batch', seq]);
  const loraRate = options.training && !trainAll ? lora.dropout : 0;
  const attnRate = options.training ? cfg.attentionDropout : 0;
  const seed = loraRate > 0 || attnRate > 0 ? g.input(LLAMA_INPUTS.dropoutSeed, 'int64', []) : undefined;
  let salt = 0;
  const candidates = modulePaths.filter((p) => p !== 'lm_head' || !lora.targetModules.includes(ALL_LINEAR));
  const adapted = adaptedPaths(candidates, lora, trainAll);
  const inputs = new ModelInputs({ graph: g, tensors: options.tensors, dtype, trainAll, modulesToSave: trainAll ? [] : lora.modulesToSave });
  const proj = (x: Value, path: string, inF: number, outF: number, bias: boolean, weightName = `${path}.weight`): Value => {
    const w = inputs.weight(weightName, [outF, inF]);
    const b = bias ? inputs.weight(`${path}.bias`, [outF]) : undefined;
    if (!adapted.has(path)) return linear(x, w, b, 'outIn');
    const drop = seed !== undefined && loraRate > 0 ? { rate: loraRate, seed, salt: ++salt } : undefined;
    return loraLinear(x, w, b, 'outIn', inputs.lora(path, inputs.findKey(weightName)!, 'linear', inF, outF, lora, drop));
  };
  const attnDropout = seed !== undefined && attnRate > 0 ? (p: Value): Value => dropout(p, { rate: attnRate, seed, salt: ++salt }) : undefined;
  return { g, inputIds, attentionMask, labels, seed, inputs, dtype, lora, proj, attnDropout };
}

/** Builds the causal-LM graph of a Llama-family checkpoint. */
export function buildLlama(options: LlamaBuildOptions): ModelGraph {
  const cfg = parseLlamaConfig(options.config);
  const seq: Dim = options.seqLen ?? 'seq';
  checkOptions(cfg, options, seq);
  const { g, inputIds, attentionMask, labels, seed, proj, attnDropout, inputs, dtype } = decoderScaffold(options, cfg, llamaModulePaths(cfg.layers, cfg.fused), seq);

  const d = cfg.hidden;
  const hd = cfg.headDim;
  const qDim = cfg.heads * hd;
  const kvDim = cfg.kvHeads * hd;
  const ff = cfg.intermediate;
  let h = gather(inputs.weight('model.embed_tokens.weight', [cfg.vocab, d]), inputIds);

  // Masks, shared by all layers: padding [b, 1, 1, s] and causal [s, s] → [b, 1, s, s].
  const fullMask = logicalAnd(unsqueeze(cast(attentionMask, 'bool'), [1, 2]), causalMask(inputIds, seq));
  let windowMask: Value | undefined;
  const window = cfg.slidingWindow;
  if (window !== undefined && cfg.slidingLayers.some(Boolean) && (typeof seq !== 'number' || seq > window)) {
    // Key j is visible from query i when i − j < window.
    const r = arange(inputIds, seq);
    windowMask = logicalAnd(fullMask, less(unsqueeze(r, 1), add(unsqueeze(r, 0), window)));
  }
  const rope = ropeTables(g, cfg.rope, seq, cfg.maxPositions, dtype, inputIds);
  const shape = { heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: hd };

  for (let l = 0; l < cfg.layers; l++) {
    // Each block is one recomputation segment (GraphBuilder.segment).
    g.segment(() => {
      const p = `model.layers.${l}`;
      const x = rmsNorm(h, inputs.weight(`${p}.input_layernorm.weight`, [d]), cfg.rmsEps);
      let q: Value;
      let k: Value;
      let v: Value;
      if (cfg.fused) {
        [q, k, v] = split(proj(x, `${p}.self_attn.qkv_proj`, d, qDim + 2 * kvDim, false), -1, [qDim, kvDim, kvDim]);
      } else {
        q = proj(x, `${p}.self_attn.q_proj`, d, qDim, cfg.qkvBias);
        k = proj(x, `${p}.self_attn.k_proj`, d, kvDim, cfg.qkvBias);
        v = proj(x, `${p}.self_attn.v_proj`, d, kvDim, cfg.qkvBias);
      }
      const headNorms = cfg.qkNorm ?
        {
          qNorm: (t: Value): Value => rmsNorm(t, inputs.weight(`${p}.self_attn.q_norm.weight`, [hd]), cfg.rmsEps),
          kNorm: (t: Value): Value => rmsNorm(t, inputs.weight(`${p}.self_attn.k_norm.weight`, [hd]), cfg.rmsEps),
        } :
        {};
      const mask = windowMask !== undefined && cfg.slidingLayers[l] ? windowMask : fullMask;
      const attn = multiHeadAttention(q, k, v, shape, { mask, rope, ...headNorms, ...(attnDropout !== undefined ? { dropout: attnDropout } : {}) });
      h = add(h, proj(attn, `${p}.self_attn.o_proj`, qDim, d, cfg.oBias));
      const y = rmsNorm(h, inputs.weight(`${p}.post_attention_layernorm.weight`, [d]), cfg.rmsEps);
      let gate: Value;
      let up: Value;
      if (cfg.fused) {
        // transformers' Phi3MLP: `gate, up = gate_up_proj(y).chunk(2, dim=-1)`.
        [gate, up] = split(proj(y, `${p}.mlp.gate_up_proj`, d, 2 * ff, false), -1, [ff, ff]);
      } else {
        gate = proj(y, `${p}.mlp.gate_proj`, d, ff, cfg.mlpBias);
        up = proj(y, `${p}.mlp.up_proj`, d, ff, cfg.mlpBias);
      }
      h = add(h, proj(mul(silu(gate), up), `${p}.mlp.down_proj`, ff, d, cfg.mlpBias));
    });
  }
  h = rmsNorm(h, inputs.weight('model.norm.weight', [d]), cfg.rmsEps);
  const logits = proj(h, 'lm_head', d, cfg.vocab, false, cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  const loss = crossEntropy(logits, shiftLabels(labels, attentionMask, seq));
  return inputs.finish({ graph: g, task: 'causal-lm', inputIds, attentionMask, labels, logits, loss, dropoutSeed: seed }, LLAMA_UNREAD_ALLOWANCES, (unread) => llamaUnreadHint(cfg, unread));
}
