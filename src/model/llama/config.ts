/**
 * The Llama family's config (`llama`, `mistral`, `qwen2`): the numbers the graph needs, with the
 * family differences made explicit (Qwen2's q/k/v biases, Mistral's sliding window, RoPE scaling).
 */
import { parseHfConfig } from '../../formats/hfConfig.js';
import { ModelError } from '../errors.js';

export interface LlamaConfig {
  readonly modelType: string;
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly intermediate: number;
  readonly vocab: number;
  readonly maxPositions: number;
  readonly rmsEps: number;
  readonly tieWordEmbeddings: boolean;
  /** q_proj, k_proj, v_proj carry biases (Qwen2, or `attention_bias`). */
  readonly qkvBias: boolean;
  /** o_proj carries a bias (`attention_bias`). */
  readonly oBias: boolean;
  /** gate/up/down carry biases (`mlp_bias`). */
  readonly mlpBias: boolean;
  /** RoPE inverse frequencies `[headDim/2]`, scaling applied. */
  readonly invFreq: Float64Array;
  /** Sliding-window attention width, for the layers from {@link windowFromLayer} on; undefined = full attention. */
  readonly slidingWindow?: number;
  readonly windowFromLayer: number;
  /** Dropout on the attention probabilities in training (`attention_dropout`, usually 0). */
  readonly attentionDropout: number;
}

/** Model types this family builds. */
export const LLAMA_MODEL_TYPES: readonly string[] = ['llama', 'mistral', 'qwen2'];

type Raw = Readonly<Record<string, unknown>>;

function num(raw: Raw, name: string): number {
  const v = raw[name];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelError('CONFIG_INVALID', `llama config: rope scaling field '${name}' must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * HF's RoPE inverse frequencies `1/θ^(2i/d)` with the `rope_scaling` (or `rope_parameters`) types
 * `default`, `linear` and `llama3` (Llama 3.1+); other types are refused rather than approximated.
 */
export function ropeInverseFrequencies(raw: Raw, headDim: number, theta: number): Float64Array {
  const half = headDim / 2;
  const inv = Float64Array.from({ length: half }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  const scalingRaw = raw.rope_scaling ?? raw.rope_parameters;
  if (typeof scalingRaw !== 'object' || scalingRaw === null) return inv;
  const scaling = scalingRaw as Raw;
  const type = scaling.rope_type ?? scaling.type ?? 'default';
  if (type === 'default') return inv;
  if (type === 'linear') return inv.map((f) => f / num(scaling, 'factor'));
  if (type === 'llama3') {
    const factor = num(scaling, 'factor');
    const low = num(scaling, 'low_freq_factor');
    const high = num(scaling, 'high_freq_factor');
    const oldLen = num(scaling, 'original_max_position_embeddings');
    const lowWavelen = oldLen / low;
    const highWavelen = oldLen / high;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (oldLen / wavelen - low) / (high - low);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  throw new ModelError('UNSUPPORTED_OPTION', `llama config: rope scaling type '${String(type)}' is not supported (supported: default, linear, llama3)`);
}

/** Parses a Llama/Mistral/Qwen2 `config.json` object. */
export function parseLlamaConfig(raw: Raw): LlamaConfig {
  const c = parseHfConfig(raw, 'config.json');
  if (!LLAMA_MODEL_TYPES.includes(c.modelType)) {
    throw new ModelError('UNSUPPORTED_MODEL', `llama: model_type '${c.modelType}' is not one of ${LLAMA_MODEL_TYPES.join(', ')}`);
  }
  if (c.activation !== 'silu') throw new ModelError('UNSUPPORTED_OPTION', `llama config: hidden_act '${c.activation}' is not supported (silu only)`);
  if (c.headDim % 2 !== 0) throw new ModelError('CONFIG_INVALID', `llama config: head dim ${c.headDim} must be even for RoPE`);
  const attentionBias = raw.attention_bias === true;
  let slidingWindow: number | undefined;
  let windowFromLayer = 0;
  const window = typeof raw.sliding_window === 'number' ? raw.sliding_window : undefined;
  if (c.modelType === 'mistral') slidingWindow = window;
  if (c.modelType === 'qwen2' && raw.use_sliding_window === true) {
    slidingWindow = window;
    windowFromLayer = typeof raw.max_window_layers === 'number' ? raw.max_window_layers : 0;
  }
  return {
    modelType: c.modelType,
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
    qkvBias: c.modelType === 'qwen2' || attentionBias,
    oBias: attentionBias,
    mlpBias: raw.mlp_bias === true,
    invFreq: ropeInverseFrequencies(raw, c.headDim, c.ropeTheta ?? 10000),
    ...(slidingWindow !== undefined ? { slidingWindow } : {}),
    windowFromLayer,
    attentionDropout: typeof raw.attention_dropout === 'number' ? raw.attention_dropout : 0,
  };
}
