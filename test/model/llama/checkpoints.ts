// Llama-family and Gemma checkpoints for the tests, written out from the HF modelling code (not from
// src/model): the stored tensors a config implies (Qwen2 biases, Qwen3 and Gemma 3 q_norm/k_norm,
// Phi-3's fused qkv_proj and gate_up_proj, Gemma's pre/post feed-forward norms, untied lm_head), filled with seeded random values: float64 for the
// small exact tests, or float32 holding bf16-rounded values for the checkpoints at real widths.
import { uniform } from './harness.js';

type Raw = Readonly<Record<string, unknown>>;

/** Gemma 2 / Gemma 3 text: sandwich norms, tied by default, head_dim 256 by default. */
function isGemma(config: Raw): boolean {
  return config.model_type === 'gemma2' || config.model_type === 'gemma3_text';
}

/** Stored key → shape, in HF's state-dict order. */
export function familyShapes(config: Raw): Map<string, number[]> {
  const n = (k: string): number => config[k] as number;
  const type = config.model_type as string;
  const gemma = isGemma(config);
  const d = n('hidden_size');
  const hd = (config.head_dim as number | undefined) ?? (gemma ? 256 : d / n('num_attention_heads'));
  const q = n('num_attention_heads') * hd;
  const kv = n('num_key_value_heads') * hd;
  const ff = n('intermediate_size');
  const out = new Map<string, number[]>([['model.embed_tokens.weight', [n('vocab_size'), d]]]);
  for (let l = 0; l < n('num_hidden_layers'); l++) {
    const p = `model.layers.${l}`;
    out.set(`${p}.input_layernorm.weight`, [d]);
    if (type === 'phi3') {
      out.set(`${p}.self_attn.qkv_proj.weight`, [q + 2 * kv, d]);
    } else {
      out.set(`${p}.self_attn.q_proj.weight`, [q, d]).set(`${p}.self_attn.k_proj.weight`, [kv, d]).set(`${p}.self_attn.v_proj.weight`, [kv, d]);
      if (type === 'qwen2') out.set(`${p}.self_attn.q_proj.bias`, [q]).set(`${p}.self_attn.k_proj.bias`, [kv]).set(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    if (type === 'qwen3' || type === 'gemma3_text') out.set(`${p}.self_attn.q_norm.weight`, [hd]).set(`${p}.self_attn.k_norm.weight`, [hd]);
    out.set(`${p}.self_attn.o_proj.weight`, [d, q]);
    out.set(`${p}.post_attention_layernorm.weight`, [d]);
    if (gemma) out.set(`${p}.pre_feedforward_layernorm.weight`, [d]).set(`${p}.post_feedforward_layernorm.weight`, [d]);
    if (type === 'phi3') out.set(`${p}.mlp.gate_up_proj.weight`, [2 * ff, d]);
    else out.set(`${p}.mlp.gate_proj.weight`, [ff, d]).set(`${p}.mlp.up_proj.weight`, [ff, d]);
    out.set(`${p}.mlp.down_proj.weight`, [d, ff]);
  }
  out.set('model.norm.weight', [d]);
  const tied = config.tie_word_embeddings ?? gemma;
  if (tied !== true) out.set('lm_head.weight', [n('vocab_size'), d]);
  return out;
}

const isNorm = (key: string): boolean => /norm\.weight$/.test(key);
/** Norm weights: around 1, or around 0 for Gemma's RMSNorm, which multiplies by 1 + w. */
const normRange = (config: Raw): [number, number] => (isGemma(config) ? [-0.2, 0.2] : [0.8, 1.2]);

/** Small checkpoints: uniform float64 values (norm weights in [0.8, 1.2] — Gemma: [−0.2, 0.2] —, embeddings in [−1, 1], the rest in [−0.5, 0.5]). */
export function smallCheckpoint(config: Raw, seed = 1): Map<string, Float64Array> {
  let s = seed * 1000;
  return new Map([...familyShapes(config)].map(([k, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const [lo, hi] = isNorm(k) ? normRange(config) : k.includes('embed_tokens') ? [-1, 1] : [-0.5, 0.5];
    return [k, uniform(size, s++, lo, hi)];
  }));
}

/** `n` seeded uniform values in [lo, hi), rounded to bfloat16 (nearest even) and held as float32. */
export function bf16Uniform(n: number, seed: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
    const u = bits[i];
    bits[i] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 0) & 0xffff0000;
  }
  return out;
}

const POOL_SIZE = 1 << 22;
const pools = new Map<number, Float32Array>();

/** 4M seeded bf16 values, uniform in ±`scale` (a power of two, so the scaled values stay bf16), made once per scale. */
function bf16Pool(scale: number): Float32Array {
  let pool = pools.get(scale);
  if (pool === undefined) {
    pool = bf16Uniform(POOL_SIZE, 12345, -1, 1).map((v) => v * scale);
    pools.set(scale, pool);
  }
  return pool;
}

/**
 * A `[rows, cols]` matrix of bf16 values uniform in ±`scale` (a power of two): each row is a window
 * of the pool at a seeded random offset (copying is ~50× faster than drawing 10⁸ numbers, and
 * distinct windows of a random sequence are as good as fresh rows here).
 */
export function bf16Matrix(rows: number, cols: number, seed: number, scale: number): Float32Array {
  const src = bf16Pool(scale);
  const out = new Float32Array(rows * cols);
  let s = seed >>> 0;
  for (let r = 0; r < rows; r++) {
    // xorshift32 offsets (integers, unlike the bf16-rounded draws).
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const at = s % (POOL_SIZE - cols);
    out.set(src.subarray(at, at + cols), r * cols);
  }
  return out;
}

/**
 * A checkpoint at real widths, as bf16 values: norm weights in [0.8, 1.2] (Gemma: [−0.2, 0.2]),
 * every matrix uniform in ±2^round(log2 √(3/fan_in)) (standard deviation within √2 of 1/√fan_in;
 * embeddings: fan_in = hidden), so activations stay of order one.
 */
export function bf16Checkpoint(config: Raw, seed = 1): Map<string, Float32Array> {
  let s = seed * 1000;
  return new Map([...familyShapes(config)].map(([k, shape]) => {
    const cols = shape[shape.length - 1];
    if (isNorm(k)) return [k, bf16Uniform(cols, s++, ...normRange(config))];
    return [k, bf16Matrix(shape.length === 1 ? 1 : shape[0], cols, 7919 * s++ + 1, 2 ** Math.round(Math.log2(Math.sqrt(3 / cols))))];
  }));
}
