/**
 * The GPT-2 hyperparameters a graph needs, from config.json with transformers' `GPT2Config`
 * defaults for absent fields (dropouts 0.1, layer_norm_epsilon 1e-5, initializer_range 0.02).
 */
import { parseHfConfig } from '../../formats/hfConfig.js';
import { ModelError } from '../errors.js';

/** Activations transformers' GPT-2 accepts that this graph builds. */
export type Gpt2Activation = 'gelu_new' | 'gelu_pytorch_tanh' | 'gelu';
const ACTIVATIONS: readonly Gpt2Activation[] = ['gelu_new', 'gelu_pytorch_tanh', 'gelu'];

export interface Gpt2Config {
  readonly vocabSize: number;
  readonly nEmbd: number;
  readonly nLayer: number;
  readonly nHead: number;
  readonly headDim: number;
  /** MLP width (n_inner, default 4·n_embd). */
  readonly nInner: number;
  readonly nPositions: number;
  readonly layerNormEpsilon: number;
  readonly activation: Gpt2Activation;
  readonly embdPdrop: number;
  readonly attnPdrop: number;
  readonly residPdrop: number;
  /** Divide attention scores by √head_dim (scale_attn_weights). */
  readonly scaleAttnWeights: boolean;
  readonly tieWordEmbeddings: boolean;
  readonly initializerRange: number;
  /** num_labels (or the size of id2label); undefined when the config names none. */
  readonly numLabels: number | undefined;
}

function rate(raw: Readonly<Record<string, unknown>>, name: string): number {
  const v = raw[name];
  if (v === undefined || v === null) return 0.1;
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ModelError('CONFIG_INVALID', `config.json: '${name}' must be a number in [0, 1), got ${JSON.stringify(v)}`);
  return v;
}

/** Reads GPT-2 hyperparameters from a parsed config.json; errors name the field. */
export function parseGpt2Config(raw: Readonly<Record<string, unknown>>): Gpt2Config {
  const hf = parseHfConfig(raw, 'config.json');
  if (hf.family !== 'gpt2') throw new ModelError('UNSUPPORTED_MODEL', `config.json: model_type '${hf.modelType}' is not GPT-2`);
  const activation = hf.activation as Gpt2Activation;
  if (!ACTIVATIONS.includes(activation)) {
    throw new ModelError('UNSUPPORTED_OPTION', `config.json: activation_function '${hf.activation}' is not supported (supported: ${ACTIVATIONS.join(', ')})`);
  }
  if (raw.scale_attn_by_inverse_layer_idx === true) {
    throw new ModelError('UNSUPPORTED_OPTION', 'config.json: scale_attn_by_inverse_layer_idx = true is not supported');
  }
  const range = raw.initializer_range;
  return {
    vocabSize: hf.vocabSize,
    nEmbd: hf.hiddenSize,
    nLayer: hf.numLayers,
    nHead: hf.numHeads,
    headDim: hf.headDim,
    nInner: hf.intermediateSize,
    nPositions: hf.maxPositions,
    layerNormEpsilon: hf.normEps,
    activation,
    embdPdrop: rate(raw, 'embd_pdrop'),
    attnPdrop: rate(raw, 'attn_pdrop'),
    residPdrop: rate(raw, 'resid_pdrop'),
    scaleAttnWeights: raw.scale_attn_weights !== false,
    tieWordEmbeddings: hf.tieWordEmbeddings,
    initializerRange: typeof range === 'number' && range > 0 ? range : 0.02,
    numLabels: hf.numLabels,
  };
}
