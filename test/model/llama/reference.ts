// Independent float64 reference of HF's LlamaForCausalLM and its relatives (Mistral's sliding
// window, Qwen2's q/k/v biases, Qwen3's per-head q_norm/k_norm and explicit head_dim, Phi-3's fused
// qkv_proj/gate_up_proj and partial RoPE, LongRoPE), written with plain loops from the HF modelling
// code on the ops of tape.ts: nothing here uses src/graph or src/model. One sequence at a time; the
// padding mask hides keys whose mask is 0. Gives the loss, the logits, and (by the tape's
// hand-written backward) the gradient of the loss with respect to every LoRA factor.
import { Tape, type LoraBranch, type Node, type WeightData } from './tape.js';

/** The numbers every decoder reference (this one and ../gemma/reference.ts) reads, spelled out by the test. */
export interface RefDecoderDims {
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly intermediate: number;
  readonly vocab: number;
  readonly eps: number;
  readonly tie: boolean;
}

/** The numbers of a Llama-family model, spelled out by the test. */
export interface RefLlamaConfig extends RefDecoderDims {
  readonly theta: number;
  readonly qkvBias: boolean;
  /** Sliding window width (all layers), if any. */
  readonly window?: number;
  /** Per-head width; hidden / heads when absent. */
  readonly headDim?: number;
  /** Qwen3: RMSNorm of each q and k head (`self_attn.q_norm`, `self_attn.k_norm`) before RoPE. */
  readonly qkNorm?: boolean;
  /** Phi-3: `self_attn.qkv_proj` (q, k, v rows) and `mlp.gate_up_proj` (gate rows, then up rows). */
  readonly fused?: boolean;
  /** RoPE frequencies of the rotated dims (length rotaryDim / 2) and the cos/sin factor; default 1/θ^(2i/hd) over all dims, factor 1. */
  readonly rope?: { readonly invFreq: readonly number[]; readonly scale: number };
}

/** LoRA factors by module path: A `[r, in]`, B `[out, r]` row-major, and s = alpha/r (a module's own r and s when given: rank_pattern, alpha_pattern). */
export interface RefLora {
  readonly scaling: number;
  readonly r: number;
  readonly factors: ReadonlyMap<string, { readonly a: WeightData; readonly b: WeightData; readonly r?: number; readonly scaling?: number }>;
  /** Dropout on the adapter input: keep mask `[batch·seq, in]` per path, and the rate. */
  readonly dropout?: { readonly rate: number; readonly keep: ReadonlyMap<string, Uint8Array> };
}

/** Float64 weights (the BERT reference's). */
export type Weights = ReadonlyMap<string, Float64Array>;
/** Weights as this reference reads them: float64, or float32 holding exact bf16 values. */
export type RefWeights = ReadonlyMap<string, WeightData>;

/** What the reference computes: logits `[batch, seq, vocab]`, the mean loss, and d loss / d A, d B per adapted path. */
export interface RefResult {
  readonly logits: Float64Array;
  readonly loss: number;
  readonly grads: ReadonlyMap<string, { readonly a: Float64Array; readonly b: Float64Array }>;
}

function get(w: RefWeights, key: string): WeightData {
  const v = w.get(key);
  if (v === undefined) throw new Error(`reference: no weight ${key}`);
  return v;
}

/**
 * `x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ` for x `[n, in]` (W `[out, in]`), with `rowOffset` the index of
 * x's first row in the flattened batch (for the dropout mask). Forward only (the BERT reference's).
 */
export function linearRef(x: Float64Array, n: number, inF: number, outF: number, w: WeightData, bias: WeightData | undefined, lora: RefLora | undefined, path: string, rowOffset: number): Float64Array {
  const y = new Float64Array(n * outF);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < outF; o++) {
      let acc = bias === undefined ? 0 : bias[o];
      for (let k = 0; k < inF; k++) acc += x[i * inF + k] * w[o * inF + k];
      y[i * outF + o] = acc;
    }
  }
  const f = lora?.factors.get(path);
  if (lora === undefined || f === undefined) return y;
  const keep = lora.dropout?.keep.get(path);
  const rate = lora.dropout?.rate ?? 0;
  for (let i = 0; i < n; i++) {
    const low = new Float64Array(lora.r);
    for (let j = 0; j < lora.r; j++) {
      for (let k = 0; k < inF; k++) {
        const kept = keep === undefined ? 1 : keep[(rowOffset + i) * inF + k] / (1 - rate);
        low[j] += x[i * inF + k] * kept * f.a[j * inF + k];
      }
    }
    for (let o = 0; o < outF; o++) {
      let acc = 0;
      for (let j = 0; j < lora.r; j++) acc += f.b[o * lora.r + j] * low[j];
      y[i * outF + o] += lora.scaling * acc;
    }
  }
  return y;
}

/** The batch a decoder reference walks, and what it fills. */
export interface CausalLmBatch {
  readonly batch: number;
  readonly seq: number;
  /** `[batch, seq, vocab]`, to fill. */
  readonly logits: Float64Array;
  /** d loss / d A, d B per adapted path, zeroed. */
  readonly grads: Map<string, { a: Float64Array; b: Float64Array }>;
  /** Per sequence and position the next token to predict; −1 at the last position, before padding and before a −100 label. */
  readonly targets: number[][];
  /** How many targets there are (at least 1): the loss is their mean. */
  readonly count: number;
}

/** Sets up a reference's pass over `ids` (HF's shifted next-token loss, masked by `mask` and by −100 labels). */
export function causalLmBatch(lora: RefLora | undefined, ids: number[][], mask: number[][], labels: number[][], vocab: number): CausalLmBatch {
  const batch = ids.length;
  const seq = ids[0].length;
  const grads = new Map([...(lora?.factors ?? new Map<string, { a: WeightData; b: WeightData }>())].map(([p, f]) => [p, { a: new Float64Array(f.a.length), b: new Float64Array(f.b.length) }]));
  const targets = labels.map((row, b) => row.map((_, t) => (t + 1 < seq && row[t + 1] !== -100 && mask[b][t + 1] !== 0 ? row[t + 1] : -1)));
  const count = Math.max(1, targets.flat().filter((x) => x >= 0).length);
  return { batch, seq, logits: new Float64Array(batch * seq * vocab), grads, targets, count };
}

/**
 * The tape's LoRA branch of module `path` in the sequence whose first row is `rowOffset` of the
 * flattened batch (for the dropout mask): undefined where `path` is not adapted.
 */
export function loraBranch(lora: RefLora | undefined, grads: CausalLmBatch['grads'], path: string, rowOffset: number): LoraBranch | undefined {
  const f = lora?.factors.get(path);
  if (lora === undefined || f === undefined) return undefined;
  const keep = lora.dropout?.keep.get(path);
  return {
    a: f.a,
    b: f.b,
    r: f.r ?? lora.r,
    scaling: f.scaling ?? lora.scaling,
    grad: grads.get(path)!,
    ...(keep !== undefined ? { keep: { mask: keep, rate: lora.dropout!.rate, rowOffset } } : {}),
  };
}

/** The token embeddings of one sequence, `[seq, hidden]`. */
export function embedRows(embed: WeightData, ids: readonly number[], hidden: number): Float64Array {
  const h0 = new Float64Array(ids.length * hidden);
  for (let t = 0; t < ids.length; t++) for (let k = 0; k < hidden; k++) h0[t * hidden + k] = embed[ids[t] * hidden + k];
  return h0;
}

/** HF default RoPE frequencies `1/θ^(2i/dim)`, i < dim/2. */
export function defaultInvFreq(dim: number, theta: number): number[] {
  return Array.from({ length: dim / 2 }, (_, i) => 1 / theta ** ((2 * i) / dim));
}

/**
 * Phi-3's LongRoPE as transformers computes it, for a sequence of `seqLen` tokens: frequencies
 * `1/(ext_i·θ^(2i/dim))` with ext = long_factor beyond original_max_position_embeddings, else
 * short_factor; cos/sin times √(1 + ln(max/original) / ln(original)).
 */
export function longRopeRef(config: Readonly<Record<string, unknown>>, dim: number, seqLen: number): { invFreq: number[]; scale: number } {
  const scaling = config.rope_scaling as Record<string, number[]>;
  const original = config.original_max_position_embeddings as number;
  const factor = (config.max_position_embeddings as number) / original;
  const ext = seqLen > original ? scaling.long_factor : scaling.short_factor;
  const theta = config.rope_theta as number;
  return {
    invFreq: defaultInvFreq(dim, theta).map((f, i) => f / ext[i]),
    scale: factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original)),
  };
}

/** Logits, mean next-token loss over next tokens that are not padding and not labelled −100, and the LoRA gradients. */
export function llamaReference(cfg: RefLlamaConfig, w: RefWeights, lora: RefLora | undefined, ids: number[][], mask: number[][], labels: number[][]): RefResult {
  const { hidden: d, heads, kvHeads, vocab, intermediate: ff } = cfg;
  const hd = cfg.headDim ?? d / heads;
  const qDim = heads * hd;
  const kvDim = kvHeads * hd;
  const rope = cfg.rope ?? { invFreq: defaultInvFreq(hd, cfg.theta), scale: 1 };
  const { batch, seq, logits, grads, targets, count } = causalLmBatch(lora, ids, mask, labels, vocab);
  let loss = 0;
  for (let b = 0; b < batch; b++) {
    const tape = new Tape();
    const branch = (path: string): LoraBranch | undefined => loraBranch(lora, grads, path, b * seq);
    const embed = get(w, 'model.embed_tokens.weight');
    let h: Node = tape.node(embedRows(embed, ids[b], d), seq, d);
    const visible = (i: number, j: number): boolean => j <= i && mask[b][j] !== 0 && (cfg.window === undefined || i - j < cfg.window);
    for (let l = 0; l < cfg.layers; l++) {
      const p = `model.layers.${l}`;
      const lin = (x: Node, name: string, outF: number, bias: boolean): Node => tape.linear(x, get(w, `${p}.${name}.weight`), outF, bias ? get(w, `${p}.${name}.bias`) : undefined, branch(`${p}.${name}`));
      const x = tape.rmsNorm(h, get(w, `${p}.input_layernorm.weight`), cfg.eps);
      let q: Node;
      let k: Node;
      let v: Node;
      if (cfg.fused === true) {
        const qkv = lin(x, 'self_attn.qkv_proj', qDim + 2 * kvDim, false);
        [q, k, v] = [tape.columns(qkv, 0, qDim), tape.columns(qkv, qDim, kvDim), tape.columns(qkv, qDim + kvDim, kvDim)];
      } else {
        [q, k, v] = [lin(x, 'self_attn.q_proj', qDim, cfg.qkvBias), lin(x, 'self_attn.k_proj', kvDim, cfg.qkvBias), lin(x, 'self_attn.v_proj', kvDim, cfg.qkvBias)];
      }
      if (cfg.qkNorm === true) {
        q = tape.rmsNorm(q, get(w, `${p}.self_attn.q_norm.weight`), cfg.eps);
        k = tape.rmsNorm(k, get(w, `${p}.self_attn.k_norm.weight`), cfg.eps);
      }
      q = tape.rope(q, hd, rope.invFreq, rope.scale);
      k = tape.rope(k, hd, rope.invFreq, rope.scale);
      const attn = tape.attention(q, k, v, hd, visible);
      h = tape.add(h, lin(attn, 'self_attn.o_proj', d, false));
      const y = tape.rmsNorm(h, get(w, `${p}.post_attention_layernorm.weight`), cfg.eps);
      let gate: Node;
      let up: Node;
      if (cfg.fused === true) {
        const gu = lin(y, 'mlp.gate_up_proj', 2 * ff, false);
        [gate, up] = [tape.columns(gu, 0, ff), tape.columns(gu, ff, ff)];
      } else {
        [gate, up] = [lin(y, 'mlp.gate_proj', ff, false), lin(y, 'mlp.up_proj', ff, false)];
      }
      h = tape.add(h, lin(tape.swiglu(gate, up), 'mlp.down_proj', d, false));
    }
    const hn = tape.rmsNorm(h, get(w, 'model.norm.weight'), cfg.eps);
    const out = tape.linear(hn, cfg.tie ? embed : get(w, 'lm_head.weight'), vocab, undefined, branch('lm_head'));
    logits.set(out.value, b * seq * vocab);
    loss += tape.crossEntropy(out, targets[b], count);
    tape.backward();
  }
  return { logits, loss, grads };
}
