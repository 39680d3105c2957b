/**
 * Hugging Face `config.json`: the architecture numbers of the supported families (GPT-2, Llama and
 * its look-alikes, BERT/RoBERTa), normalised to one typed shape, with the raw JSON kept beside.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, isNotFound } from './errors.js';
import { readJsonFile } from './jsonFile.js';

export type ModelFamily = 'gpt2' | 'llama' | 'bert';

/** `model_type` values this project can build, and the family each belongs to. */
export const SUPPORTED_MODEL_TYPES: Readonly<Record<string, ModelFamily>> = {
  gpt2: 'gpt2',
  llama: 'llama',
  mistral: 'llama',
  qwen2: 'llama',
  qwen3: 'llama',
  phi3: 'llama',
  gemma2: 'llama',
  gemma3_text: 'llama',
  bert: 'bert',
  roberta: 'bert',
  'xlm-roberta': 'bert',
};

/**
 * `model_type` values refused with the reason, rather than as unknown: Gemma 3's multimodal
 * checkpoints (Gemma3ForConditionalGeneration) hold the language model under `language_model.`
 * beside a vision tower, and PEFT names its modules `model.language_model.…`.
 */
export const REFUSED_MODEL_TYPES: Readonly<Record<string, string>> = {
  gemma3: "model_type 'gemma3' is Gemma 3's multimodal model (Gemma3ForConditionalGeneration: a SigLIP vision tower and " +
    'projector around the language model); fedex trains Gemma 3 text models (model_type gemma3_text, as gemma-3-270m and ' +
    'gemma-3-1b are published). Save its language model as a text checkpoint first (docs/models.md shows how, with transformers) ' +
    'and point --model at that folder.',
};

/** A model's architecture numbers under one set of names, whatever the family calls them. */
export interface HfModelConfig {
  /** The config.json file read. */
  readonly source: string;
  readonly modelType: string;
  readonly family: ModelFamily;
  readonly architectures: readonly string[];
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  /** Key/value heads (grouped-query attention); equals numHeads when not grouped. */
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly intermediateSize: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  /** Layer-norm (GPT-2, BERT) or RMS-norm (Llama) epsilon. */
  readonly normEps: number;
  readonly activation: string;
  readonly tieWordEmbeddings: boolean;
  /** Llama family: RoPE base. */
  readonly ropeTheta?: number;
  /** BERT family: token-type vocabulary. */
  readonly typeVocabSize?: number;
  /** Classification heads: `num_labels` or the size of `id2label`. */
  readonly numLabels?: number;
  /** `torch_dtype` (or `dtype` in newer transformers), e.g. 'float32', 'bfloat16'. */
  readonly torchDtype?: string;
  /** The whole JSON object as read. */
  readonly raw: Readonly<Record<string, unknown>>;
}

type Raw = Readonly<Record<string, unknown>>;

/**
 * Where a family's config.json keeps each number: the keys tried in order, the first present wins.
 * A number none of them holds is an error, except numKvHeads (= numHeads) and headDim (= hiddenSize /
 * numHeads), which a family without keys for them always derives, and GPT-2's intermediate size.
 */
interface FamilyKeys {
  readonly hiddenSize: readonly string[];
  readonly numLayers: readonly string[];
  readonly numHeads: readonly string[];
  readonly numKvHeads: readonly string[];
  readonly headDim: readonly string[];
  readonly intermediateSize: readonly string[];
  readonly vocabSize: readonly string[];
  readonly maxPositions: readonly string[];
  readonly normEps: { readonly name: string; readonly fallback: number };
  readonly activation: { readonly names: readonly string[]; readonly fallback: string };
}

/** Where transformers' configs keep the sizes, as the Llama and BERT families name them. */
const GENERIC_SIZE_KEYS = {
  hiddenSize: ['hidden_size'],
  numLayers: ['num_hidden_layers'],
  numHeads: ['num_attention_heads'],
  intermediateSize: ['intermediate_size'],
  vocabSize: ['vocab_size'],
  maxPositions: ['max_position_embeddings'],
} as const;

const FAMILY_KEYS: Readonly<Record<ModelFamily, FamilyKeys>> = {
  // GPT-2's own names first, then the generic ones GPT2Config maps them to.
  gpt2: {
    hiddenSize: ['n_embd', 'hidden_size'],
    numLayers: ['n_layer', 'num_hidden_layers'],
    numHeads: ['n_head', 'num_attention_heads'],
    numKvHeads: [],
    headDim: [],
    intermediateSize: ['n_inner'],
    vocabSize: ['vocab_size'],
    maxPositions: ['n_positions', 'n_ctx'],
    normEps: { name: 'layer_norm_epsilon', fallback: 1e-5 },
    activation: { names: ['activation_function'], fallback: 'gelu_new' },
  },
  llama: {
    ...GENERIC_SIZE_KEYS,
    numKvHeads: ['num_key_value_heads'],
    headDim: ['head_dim'],
    normEps: { name: 'rms_norm_eps', fallback: 1e-6 },
    // Gemma's configs name the activation `hidden_activation`.
    activation: { names: ['hidden_activation', 'hidden_act'], fallback: 'silu' },
  },
  bert: {
    ...GENERIC_SIZE_KEYS,
    numKvHeads: [],
    headDim: [],
    normEps: { name: 'layer_norm_eps', fallback: 1e-12 },
    activation: { names: ['hidden_act'], fallback: 'gelu' },
  },
};

function field(raw: Raw, source: string, names: readonly string[], fallback?: number): number {
  for (const name of names) {
    const v = raw[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new FormatError('CONFIG_INVALID_FIELD', `field '${name}' must be a positive integer, got ${JSON.stringify(v)}`, { file: source });
    }
    return v;
  }
  if (fallback !== undefined) return fallback;
  throw new FormatError('CONFIG_INVALID_FIELD', `missing field '${names.join("' or '")}'`, { file: source });
}

function real(raw: Raw, source: string, name: string, fallback: number): number {
  const v = raw[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new FormatError('CONFIG_INVALID_FIELD', `field '${name}' must be a positive number, got ${JSON.stringify(v)}`, { file: source });
  }
  return v;
}

/** The first of `names` that holds a string, else `fallback`. */
function text(raw: Raw, names: readonly string[], fallback: string): string {
  return names.map((name) => raw[name]).find((v): v is string => typeof v === 'string') ?? fallback;
}

function flag(raw: Raw, name: string, fallback: boolean): boolean {
  const v = raw[name];
  return typeof v === 'boolean' ? v : fallback;
}

function numLabels(raw: Raw): number | undefined {
  if (typeof raw.num_labels === 'number') return raw.num_labels;
  const id2label = raw.id2label;
  if (typeof id2label === 'object' && id2label !== null) return Object.keys(id2label).length;
  return undefined;
}

function ropeTheta(raw: Raw): number {
  if (typeof raw.rope_theta === 'number') return raw.rope_theta;
  // Newer transformers nest it under rope_parameters.
  const params = raw.rope_parameters;
  if (typeof params === 'object' && params !== null && typeof (params as Raw).rope_theta === 'number') return (params as Raw).rope_theta as number;
  return 10000;
}

/** Normalises a parsed config.json object; `source` names the file in errors. */
export function parseHfConfig(json: unknown, source: string): HfModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FormatError('CONFIG_INVALID_JSON', 'config.json must hold a JSON object', { file: source });
  }
  const raw = json as Raw;
  const modelType = raw.model_type;
  if (typeof modelType !== 'string') throw new FormatError('CONFIG_INVALID_FIELD', "missing string field 'model_type'", { file: source });
  const family = Object.hasOwn(SUPPORTED_MODEL_TYPES, modelType) ? SUPPORTED_MODEL_TYPES[modelType] : undefined;
  if (Object.hasOwn(REFUSED_MODEL_TYPES, modelType)) throw new FormatError('CONFIG_UNSUPPORTED_MODEL', REFUSED_MODEL_TYPES[modelType], { file: source });
  if (family === undefined) {
    throw new FormatError('CONFIG_UNSUPPORTED_MODEL', `model_type '${modelType}' is not supported (supported: ${Object.keys(SUPPORTED_MODEL_TYPES).join(', ')})`, { file: source });
  }
  const architectures = Array.isArray(raw.architectures) ? raw.architectures.filter((a): a is string => typeof a === 'string') : [];
  const torchDtype = typeof raw.torch_dtype === 'string' ? raw.torch_dtype : typeof raw.dtype === 'string' ? raw.dtype : undefined;
  const common = { source, modelType, family, architectures, raw, numLabels: numLabels(raw), torchDtype };

  const keys = FAMILY_KEYS[family];
  const hiddenSize = field(raw, source, keys.hiddenSize);
  const numHeads = field(raw, source, keys.numHeads);
  const config: HfModelConfig = {
    ...common,
    hiddenSize,
    numLayers: field(raw, source, keys.numLayers),
    numHeads,
    numKvHeads: field(raw, source, keys.numKvHeads, numHeads),
    headDim: field(raw, source, keys.headDim, hiddenSize / numHeads),
    // GPT-2's n_inner is null unless set: 4 × the hidden size.
    intermediateSize: field(raw, source, keys.intermediateSize, family === 'gpt2' ? 4 * hiddenSize : undefined),
    vocabSize: field(raw, source, keys.vocabSize),
    maxPositions: field(raw, source, keys.maxPositions),
    normEps: real(raw, source, keys.normEps.name, keys.normEps.fallback),
    activation: text(raw, keys.activation.names, keys.activation.fallback),
    // Of the Llama family only Gemma ties by default.
    tieWordEmbeddings: flag(raw, 'tie_word_embeddings', family !== 'llama' || modelType.startsWith('gemma')),
    ...(family === 'llama' ? { ropeTheta: ropeTheta(raw) } : {}),
    ...(family === 'bert' ? { typeVocabSize: field(raw, source, ['type_vocab_size'], 2) } : {}),
  };
  if (!Number.isInteger(config.headDim)) {
    throw new FormatError('CONFIG_INVALID_FIELD', `hidden size ${config.hiddenSize} is not divisible by ${config.numHeads} heads`, { file: source });
  }
  if (config.numHeads % config.numKvHeads !== 0) {
    throw new FormatError('CONFIG_INVALID_FIELD', `${config.numHeads} attention heads are not a multiple of ${config.numKvHeads} key/value heads`, { file: source });
  }
  return config;
}

/** Reads `config.json` from a model folder (or the file itself). */
export async function readHfConfig(path: string): Promise<HfModelConfig> {
  let file = path;
  try {
    if ((await stat(path)).isDirectory()) file = join(path, 'config.json');
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  return parseHfConfig(await readJsonFile(file, 'no config.json here', 'CONFIG_INVALID_JSON'), file);
}
