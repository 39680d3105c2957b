/**
 * Gemma 2 and Gemma 3 text configs (`gemma2`, `gemma3_text`) as transformers reads them
 * (`Gemma2Config`, `Gemma3TextConfig`): the class defaults for absent fields, the layers that slide
 * (`layer_types`, else every other layer for Gemma 2 and five of six for Gemma 3's
 * `sliding_window_pattern`), the attention scale `query_pre_attn_scalar^-0.5`, the soft caps, and
 * the RoPE of each layer type (Gemma 3: `rope_theta` and `rope_scaling` for full-attention layers,
 * `rope_local_base_freq` for sliding ones, or a `rope_parameters` keyed by layer type).
 */
import { parseHfConfig } from '../../formats/hfConfig.js';
import { ModelError } from '../errors.js';
import { decoderDims, type DecoderDims } from '../llama/config.js';
import { ropeSpec, type RopeSpec } from '../llama/rope.js';
import { ropeFrequencies, type RopeSource } from '../llama/ropeScaling.js';

type Raw = Readonly<Record<string, unknown>>;

/** Model types this family builds (PEFT's default targets for both: q_proj, v_proj). */
export const GEMMA_MODEL_TYPES: readonly string[] = ['gemma2', 'gemma3_text'];

export interface GemmaConfig extends DecoderDims {
  readonly modelType: 'gemma2' | 'gemma3_text';
  /** q/k/v/o carry biases (`attention_bias`). */
  readonly attentionBias: boolean;
  /** Factor on q·kᵀ: `query_pre_attn_scalar^-0.5`. */
  readonly attentionScale: number;
  /** `attn_logit_softcapping` (Gemma 2: 50); undefined = none. Gemma 3's attention never applies it (transformers 5 keeps the field but ignores it). */
  readonly attentionSoftcap?: number;
  /** `final_logit_softcapping` (Gemma 2: 30); undefined = none (Gemma 3). */
  readonly finalSoftcap?: number;
  /** Gemma 3: `q_norm` / `k_norm` over head_dim before RoPE. */
  readonly qkNorm: boolean;
  /** Sliding-window width of the layers {@link slidingLayers} marks (undefined when none slides). */
  readonly slidingWindow?: number;
  readonly slidingLayers: readonly boolean[];
  /** RoPE of the full-attention layers and of the sliding ones (the same for Gemma 2). */
  readonly rope: { readonly full: RopeSpec; readonly sliding: RopeSpec };
  /**
   * The embeddings' factor √hidden_size as transformers applies it: a float32 scalar cast to the
   * weights' dtype, so fround(√d) for the float32 (and float64) models fedex builds; a bfloat16
   * transformers model rounds it once more (√1152 = 33.94 → 34).
   */
  readonly embedScale: number;
  readonly attentionDropout: number;
}

/** The config class defaults transformers fills absent fields with (the fields parseHfConfig does not require). */
const DEFAULTS: Readonly<Record<GemmaConfig['modelType'], Raw>> = {
  gemma2: {
    head_dim: 256,
    hidden_activation: 'gelu_pytorch_tanh',
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    attention_bias: false,
    attention_dropout: 0,
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    final_logit_softcapping: 30,
    attn_logit_softcapping: 50,
  },
  gemma3_text: {
    head_dim: 256,
    hidden_activation: 'gelu_pytorch_tanh',
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    rope_theta: 1_000_000,
    rope_local_base_freq: 10000,
    attention_bias: false,
    attention_dropout: 0,
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
    sliding_window_pattern: 6,
  },
};

/** The tanh GELU (`gelu_pytorch_tanh`, also named `gelu_new`): what every Gemma 2/3 checkpoint uses. */
const ACTIVATIONS = ['gelu_pytorch_tanh', 'gelu_new'];

function positive(raw: Raw, name: string): number {
  const v = raw[name];
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new ModelError('CONFIG_INVALID', `gemma config: '${name}' must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** A soft cap, or undefined for null (none). */
function cap(raw: Raw, name: string): number | undefined {
  return raw[name] === null || raw[name] === undefined ? undefined : positive(raw, name);
}

/** Per layer: true where the sliding window applies (`layer_types`, else the type's default pattern). */
function slidingLayersOf(raw: Raw, modelType: GemmaConfig['modelType'], layers: number): boolean[] {
  const types = raw.layer_types;
  if (Array.isArray(types)) {
    if (types.length !== layers) throw new ModelError('CONFIG_INVALID', `gemma config: layer_types has ${types.length} entries for ${layers} layers`);
    return types.map((t, l) => {
      if (t !== 'sliding_attention' && t !== 'full_attention') {
        throw new ModelError('UNSUPPORTED_OPTION', `gemma config: layer_types[${l}] is ${JSON.stringify(t)} (supported: sliding_attention, full_attention)`);
      }
      return t === 'sliding_attention';
    });
  }
  // Gemma 2 alternates, starting with a sliding layer; Gemma 3 has one full layer every `pattern`.
  const pattern = modelType === 'gemma2' ? 2 : positive(raw, 'sliding_window_pattern');
  return Array.from({ length: layers }, (_, l) => (l + 1) % pattern !== 0);
}

function dict(v: unknown): Raw | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Raw) : undefined;
}

/**
 * Gemma 3's two RoPEs, as Gemma3TextConfig merges them: a `rope_parameters` keyed by layer type if
 * there is one, with `rope_scaling` laid over the full-attention entry; the full-attention base from
 * `rope_theta` (1e6), the sliding base from `rope_local_base_freq` (1e4), unless an entry names one.
 */
function gemma3Rope(raw: Raw, headDim: number, maxPositions: number): GemmaConfig['rope'] {
  const nested = dict(raw.rope_parameters);
  if (nested !== undefined && !('full_attention' in nested) && !('sliding_attention' in nested)) {
    throw new ModelError('CONFIG_INVALID', 'gemma3_text config: rope_parameters must be keyed by layer type (full_attention, sliding_attention)');
  }
  const full = { ...dict(nested?.full_attention), ...dict(raw.rope_scaling) };
  const sliding = { ...dict(nested?.sliding_attention) };
  /** The entry's own rope_theta, else the config field `base` (with its class default). */
  const spec = (params: Raw, base: string): RopeSpec => {
    const source: RopeSource = { params, theta: typeof params.rope_theta === 'number' ? params.rope_theta : positive(raw, base), maxPositions };
    return { rotaryDim: headDim, ...ropeFrequencies(source, headDim) };
  };
  return { full: spec(full, 'rope_theta'), sliding: spec(sliding, 'rope_local_base_freq') };
}

/** Parses a Gemma 2 or Gemma 3 text `config.json` object (class defaults for absent fields). */
export function parseGemmaConfig(json: Raw): GemmaConfig {
  const modelType = json.model_type;
  if (modelType !== 'gemma2' && modelType !== 'gemma3_text') {
    throw new ModelError('UNSUPPORTED_MODEL', `gemma: model_type ${JSON.stringify(modelType)} is not one of ${GEMMA_MODEL_TYPES.join(', ')}`);
  }
  const raw: Raw = { ...DEFAULTS[modelType], ...json };
  const c = parseHfConfig({ ...raw, model_type: 'llama' }, 'config.json');
  const activation = String(raw.hidden_activation ?? raw.hidden_act);
  if (!ACTIVATIONS.includes(activation)) {
    throw new ModelError('UNSUPPORTED_OPTION', `${modelType} config: hidden_activation '${activation}' is not supported (${ACTIVATIONS.join(', ')})`);
  }
  if (raw.use_bidirectional_attention === true) {
    throw new ModelError('UNSUPPORTED_OPTION', `${modelType} config: use_bidirectional_attention (an embedding model such as EmbeddingGemma) is not supported; fedex trains causal LMs`);
  }
  if (c.headDim % 2 !== 0) throw new ModelError('CONFIG_INVALID', `${modelType} config: head_dim ${c.headDim} must be even for RoPE`);
  const slidingLayers = slidingLayersOf(raw, modelType, c.numLayers);
  const window = raw.sliding_window;
  if (slidingLayers.some(Boolean) && (typeof window !== 'number' || !Number.isInteger(window) || window < 1)) {
    throw new ModelError('CONFIG_INVALID', `${modelType} config: sliding layers need a positive integer sliding_window, got ${JSON.stringify(window)}`);
  }
  const gemma2Rope = modelType === 'gemma2' ? ropeSpec(raw, c.headDim, c.ropeTheta ?? 10000, c.maxPositions) : undefined;
  const rope = gemma2Rope !== undefined ? { full: gemma2Rope, sliding: gemma2Rope } : gemma3Rope(raw, c.headDim, c.maxPositions);
  const attentionCap = modelType === 'gemma2' ? cap(raw, 'attn_logit_softcapping') : undefined;
  const finalCap = cap(raw, 'final_logit_softcapping');
  return {
    modelType,
    ...decoderDims(c),
    attentionBias: raw.attention_bias === true,
    attentionScale: positive(raw, 'query_pre_attn_scalar') ** -0.5,
    ...(attentionCap !== undefined ? { attentionSoftcap: attentionCap } : {}),
    ...(finalCap !== undefined ? { finalSoftcap: finalCap } : {}),
    qkNorm: modelType === 'gemma3_text',
    ...(typeof window === 'number' && slidingLayers.some(Boolean) ? { slidingWindow: window } : {}),
    slidingLayers,
    rope,
    embedScale: Math.fround(Math.sqrt(c.hiddenSize)),
    attentionDropout: typeof raw.attention_dropout === 'number' ? raw.attention_dropout : 0,
  };
}
