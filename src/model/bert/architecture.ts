/** BERT and RoBERTa sequence classifiers (`bert`, `roberta`, `xlm-roberta`) as an {@link Architecture}. */
import type { Architecture } from '../types.js';
import { buildBert } from './build.js';
import { BERT_PREFIXES, bertMaxSeqLen, parseBertConfig } from './config.js';

/** Sequence classification for BERT/RoBERTa checkpoints; PEFT's default targets for them are query and value. */
export const bertArchitecture: Architecture = {
  modelTypes: Object.keys(BERT_PREFIXES),
  defaultTargetModules: ['query', 'value'],
  tasks: ['sequence-classification'],
  build: (options) => buildBert(options),
  maxSeqLen: (config) => {
    const cfg = parseBertConfig(config);
    return { value: bertMaxSeqLen(cfg), key: cfg.prefix === 'roberta' ? 'max_position_embeddings − pad_token_id − 1' : 'max_position_embeddings' };
  },
};
