/**
 * The BERT family's config (`bert`, `roberta`, `xlm-roberta`): encoder numbers, the key prefix HF
 * stores the encoder under, RoBERTa's padding-offset positions, dropouts and the label count.
 */
import { parseHfConfig } from '../../formats/hfConfig.js';
import { ModelError } from '../errors.js';

/** Model types this family builds, with the prefix of the encoder's keys (`bert.` / `roberta.`). */
export const BERT_PREFIXES: Readonly<Record<string, 'bert' | 'roberta'>> = { bert: 'bert', roberta: 'roberta', 'xlm-roberta': 'roberta' };

export interface BertConfig {
  readonly modelType: string;
  /** `bert` or `roberta`: the encoder's key prefix and the head's shape. */
  readonly prefix: 'bert' | 'roberta';
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly intermediate: number;
  readonly vocab: number;
  readonly maxPositions: number;
  readonly typeVocab: number;
  readonly layerNormEps: number;
  /** `gelu` (erf, BERT's) or `gelu_tanh` (`gelu_new`, `gelu_pytorch_tanh`). */
  readonly activation: 'gelu' | 'gelu_tanh';
  readonly hiddenDropout: number;
  readonly attentionDropout: number;
  /** Dropout before the classifier (`classifier_dropout`, else `hidden_dropout_prob`). */
  readonly classifierDropout: number;
  readonly numLabels: number;
  /** RoBERTa: `pad_token_id`, the padding_idx its positions count from. */
  readonly padTokenId: number;
  readonly initializerRange: number;
}

type Raw = Readonly<Record<string, unknown>>;

function rate(raw: Raw, name: string, fallback: number): number {
  const v = raw[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ModelError('CONFIG_INVALID', `bert config: '${name}' must be a number in [0, 1), got ${JSON.stringify(v)}`);
  return v;
}

/** Parses a BERT/RoBERTa `config.json` object for sequence classification. */
export function parseBertConfig(raw: Raw): BertConfig {
  const c = parseHfConfig(raw, 'config.json');
  const prefix = Object.hasOwn(BERT_PREFIXES, c.modelType) ? BERT_PREFIXES[c.modelType] : undefined;
  if (prefix === undefined) throw new ModelError('UNSUPPORTED_MODEL', `bert: model_type '${c.modelType}' is not one of ${Object.keys(BERT_PREFIXES).join(', ')}`);
  const act = c.activation;
  const activation = act === 'gelu' ? 'gelu' : act === 'gelu_new' || act === 'gelu_pytorch_tanh' ? 'gelu_tanh' : undefined;
  if (activation === undefined) throw new ModelError('UNSUPPORTED_OPTION', `${c.modelType} config: hidden_act '${act}' is not supported (gelu, gelu_new, gelu_pytorch_tanh)`);
  const positionType = raw.position_embedding_type ?? 'absolute';
  if (positionType !== 'absolute') throw new ModelError('UNSUPPORTED_OPTION', `${c.modelType} config: position_embedding_type '${String(positionType)}' is not supported (absolute only)`);
  const problem = raw.problem_type;
  if (problem !== undefined && problem !== null && problem !== 'single_label_classification') {
    throw new ModelError('UNSUPPORTED_OPTION', `${c.modelType} config: problem_type '${String(problem)}' is not supported (single_label_classification only)`);
  }
  const numLabels = c.numLabels ?? 2;
  if (!Number.isInteger(numLabels) || numLabels < 2) {
    throw new ModelError('UNSUPPORTED_OPTION', `${c.modelType}: sequence classification needs num_labels ≥ 2 (got ${numLabels}; regression is not supported)`);
  }
  const hiddenDropout = rate(raw, 'hidden_dropout_prob', 0.1);
  return {
    modelType: c.modelType,
    prefix,
    hidden: c.hiddenSize,
    layers: c.numLayers,
    heads: c.numHeads,
    intermediate: c.intermediateSize,
    vocab: c.vocabSize,
    maxPositions: c.maxPositions,
    typeVocab: c.typeVocabSize ?? 2,
    layerNormEps: c.normEps,
    activation,
    hiddenDropout,
    attentionDropout: rate(raw, 'attention_probs_dropout_prob', 0.1),
    classifierDropout: rate(raw, 'classifier_dropout', hiddenDropout),
    numLabels,
    padTokenId: typeof raw.pad_token_id === 'number' ? raw.pad_token_id : prefix === 'roberta' ? 1 : 0,
    initializerRange: typeof raw.initializer_range === 'number' ? raw.initializer_range : 0.02,
  };
}

/** The longest sequence a checkpoint's position table covers: RoBERTa's positions start at pad_token_id + 1. */
export function bertMaxSeqLen(cfg: BertConfig): number {
  return cfg.prefix === 'roberta' ? cfg.maxPositions - cfg.padTokenId - 1 : cfg.maxPositions;
}
