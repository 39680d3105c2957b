// Small Llama-family configs shared by the tests: config.json objects as transformers reads them, and
// (refConfig) the float64 reference's numbers for the same model, spelled out by hand.
import type { RefLlamaConfig } from './reference.js';

/** What the tests vary on the tiny Llama (hidden 16, 4 heads of 4, intermediate 24, vocab 40). */
export interface Variant {
  readonly modelType?: string;
  readonly kvHeads?: number;
  readonly tie?: boolean;
  /** Sliding window (all layers); none when absent. */
  readonly window?: number;
  readonly layers?: number;
}

/** A variant with its defaults filled in: llama, 2 kv heads, untied, 2 layers. */
export function withDefaults(v: Variant = {}): Required<Omit<Variant, 'window'>> & Pick<Variant, 'window'> {
  return { modelType: v.modelType ?? 'llama', kvHeads: v.kvHeads ?? 2, tie: v.tie ?? false, layers: v.layers ?? 2, window: v.window };
}

/** The tiny Llama's config.json. */
export function rawConfig(variant: Variant = {}): Record<string, unknown> {
  const v = withDefaults(variant);
  return {
    model_type: v.modelType,
    hidden_size: 16,
    num_hidden_layers: v.layers,
    num_attention_heads: 4,
    num_key_value_heads: v.kvHeads,
    intermediate_size: 24,
    vocab_size: 40,
    max_position_embeddings: 32,
    rms_norm_eps: 1e-6,
    hidden_act: 'silu',
    rope_theta: 10000,
    tie_word_embeddings: v.tie,
    ...(v.window !== undefined ? { sliding_window: v.window } : {}),
  };
}

/** The reference's view of the same tiny Llama. */
export function refConfig(variant: Variant = {}): RefLlamaConfig {
  const { modelType, kvHeads, tie, window, layers } = withDefaults(variant);
  return { hidden: 16, layers, heads: 4, kvHeads, intermediate: 24, vocab: 40, eps: 1e-6, theta: 10000, tie, qkvBias: modelType === 'qwen2', ...(window !== undefined ? { window } : {}) };
}

/** A Qwen3 config.json at small widths: hidden 16, 2 layers, 4 heads of head_dim 16 over 2 kv heads, tied, no sliding window. */
export const QWEN3_SMALL = {
  model_type: 'qwen3',
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  intermediate_size: 24,
  vocab_size: 40,
  max_position_embeddings: 32,
  rms_norm_eps: 1e-6,
  hidden_act: 'silu',
  rope_theta: 1000000,
  tie_word_embeddings: true,
  attention_bias: false,
  use_sliding_window: false,
  sliding_window: null,
  max_window_layers: 2,
};

/** The numbers of the small Phi-3-sized decoder, without a model_type: hidden 32, 2 layers, 2 heads of 16 over 1 kv head, intermediate 20, vocab 40, 64 positions. */
export const SMALL_DECODER = {
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 20,
  vocab_size: 40,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  hidden_act: 'silu',
  rope_theta: 10000,
};
