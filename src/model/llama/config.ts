/**
 * The Llama family's config (`llama`, `mistral`, `qwen2`, `qwen3`, `phi3`): the numbers the graph
 * needs, with the family differences made explicit (Qwen2's q/k/v biases, Qwen3's per-head q/k
 * RMSNorm, Phi-3's fused projections and partial RoPE, Mistral's sliding window, RoPE scaling).
 */
import { parseHfConfig } from '../../formats/hfConfig.js';
import { ModelError } from '../errors.js';
import { ropeSpec, type RopeSpec } from './rope.js';

/** The dimensions every decoder of the Llama lineage (Llama, Qwen, Phi-3, Gemma) has. */
export interface DecoderDims {
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  /** Per-head width (`head_dim`; may differ from hidden / heads, as in Qwen3 and Gemma). */
  readonly headDim: number;
  readonly intermediate: number;
  readonly vocab: number;
  readonly maxPositions: number;
  readonly rmsEps: number;
  readonly tieWordEmbeddings: boolean;
}

export interface LlamaConfig extends DecoderDims {
  readonly modelType: string;
  /** q_proj, k_proj, v_proj carry biases (Qwen2, or `attention_bias`). */
  readonly qkvBias: boolean;
  /** o_proj carries a bias (`attention_bias`). */
  readonly oBias: boolean;
  /** gate/up/down carry biases (`mlp_bias`). */
  readonly mlpBias: boolean;
  /** Qwen3: RMSNorm over head_dim on each q and k head (`q_norm`, `k_norm`) before RoPE. */
  readonly qkNorm: boolean;
  /** Phi-3: one `qkv_proj` (q, k, v rows in that order) and one `gate_up_proj` (gate rows, then up rows). */
  readonly fused: boolean;
  readonly rope: RopeSpec;
  /** Sliding-window attention width on the layers {@link slidingLayers} marks; undefined = full attention everywhere. */
  readonly slidingWindow?: number;
  /** Per layer: true where the sliding window applies. */
  readonly slidingLayers: readonly boolean[];
  /** Dropout on the attention probabilities in training (`attention_dropout`, usually 0). */
  readonly attentionDropout: number;
  /** Phi-3's residual and embedding dropout (`resid_pdrop`, `embd_pdrop`): the build refuses them in training. */
  readonly residDropout: number;
  readonly embedDropout: number;
}

/** Model types the `llama` architecture builds (PEFT default targets q_proj, v_proj). */
export const LLAMA_MODEL_TYPES: readonly string[] = ['llama', 'mistral', 'qwen2', 'qwen3'];
/** Model types with Phi-3's fused projections (PEFT default targets qkv_proj, o_proj, gate_up_proj, down_proj). */
export const PHI3_MODEL_TYPES: readonly string[] = ['phi3'];

const ALL_TYPES = [...LLAMA_MODEL_TYPES, ...PHI3_MODEL_TYPES];

type Raw = Readonly<Record<string, unknown>>;

function rate(raw: Raw, name: string): number {
  const v = raw[name];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ModelError('CONFIG_INVALID', `llama config: '${name}' must be a number in [0, 1), got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Which layers slide (transformers: Mistral and Phi-3 all layers; Qwen2/Qwen3 with
 * `use_sliding_window` the layers `layer_types` marks `sliding_attention`, else those from
 * `max_window_layers` on).
 */
function slidingLayersOf(raw: Raw, modelType: string, layers: number): { window?: number; layers: boolean[] } {
  const window = typeof raw.sliding_window === 'number' ? raw.sliding_window : undefined;
  const none = { layers: new Array<boolean>(layers).fill(false) };
  if (window === undefined) return none;
  if (modelType === 'mistral' || modelType === 'phi3') return { window, layers: new Array<boolean>(layers).fill(true) };
  if ((modelType === 'qwen2' || modelType === 'qwen3') && raw.use_sliding_window === true) {
    const types = raw.layer_types;
    if (Array.isArray(types)) {
      if (types.length !== layers) throw new ModelError('CONFIG_INVALID', `llama config: layer_types has ${types.length} entries for ${layers} layers`);
      return { window, layers: types.map((t) => t === 'sliding_attention') };
    }
    const from = typeof raw.max_window_layers === 'number' ? raw.max_window_layers : 0;
    return { window, layers: Array.from({ length: layers }, (_, l) => l >= from) };
  }
  return none;
}

/** The dimensions every decoder of the Llama lineage (Llama, Qwen, Phi-3, Gemma) reads from hfConfig's parse. */
export function decoderDims(c: ReturnType<typeof parseHfConfig>): DecoderDims {
  return {
    hidden: c.hiddenSize,
    layers: c.numLayers,
    heads: c.numHeads,
    kvHeads: c.numKvHeads,
    headDim: c.headDim,
    intermediate: c.intermediateSize,
    vocab: c.vocabSize,
    maxPositions: c.maxPositions,
    rmsEps: c.normEps,
    tieWordEmbeddings: c.tieWordEmbeddings,
  };
}

/** Parses a Llama/Mistral/Qwen2/Qwen3/Phi-3 `config.json` object. */
export function parseLlamaConfig(raw: Raw): LlamaConfig {
  const modelType = raw.model_type;
  if (typeof modelType !== 'string' || !ALL_TYPES.includes(modelType)) {
    throw new ModelError('UNSUPPORTED_MODEL', `llama: model_type ${JSON.stringify(modelType)} is not one of ${ALL_TYPES.join(', ')}`);
  }
  // The numbers follow hfConfig's Llama-family field rules, which Qwen3 and Phi-3 share.
  const c = parseHfConfig({ ...raw, model_type: 'llama' }, 'config.json');
  if (c.activation !== 'silu') throw new ModelError('UNSUPPORTED_OPTION', `llama config: hidden_act '${c.activation}' is not supported (silu only)`);
  if (c.headDim % 2 !== 0) throw new ModelError('CONFIG_INVALID', `llama config: head dim ${c.headDim} must be even for RoPE`);
  const fused = modelType === 'phi3';
  // transformers' Phi-3 layers have no biases whatever attention_bias / mlp_bias say (stored biases
  // would be unread tensors, which the build refuses).
  const attentionBias = !fused && raw.attention_bias === true;
  const sliding = slidingLayersOf(raw, modelType, c.numLayers);
  return {
    modelType,
    ...decoderDims(c),
    qkvBias: modelType === 'qwen2' || attentionBias,
    oBias: attentionBias,
    mlpBias: !fused && raw.mlp_bias === true,
    qkNorm: modelType === 'qwen3',
    fused,
    // Phi3Config's original_max_position_embeddings defaults to 4096 (LongRoPE's switch point).
    rope: ropeSpec(raw, c.headDim, c.ropeTheta ?? 10000, c.maxPositions, fused ? { partialRotary: true, originalMaxDefault: 4096 } : {}),
    ...(sliding.window !== undefined ? { slidingWindow: sliding.window } : {}),
    slidingLayers: sliding.layers,
    attentionDropout: typeof raw.attention_dropout === 'number' ? raw.attention_dropout : 0,
    residDropout: rate(raw, 'resid_pdrop'),
    embedDropout: rate(raw, 'embd_pdrop'),
  };
}
