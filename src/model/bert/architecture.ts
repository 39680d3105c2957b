/** BERT and RoBERTa sequence classifiers (`bert`, `roberta`, `xlm-roberta`) as an {@link Architecture}. */
import type { Architecture } from '../types.js';
import { buildBert } from './build.js';
import { BERT_PREFIXES } from './config.js';

/** Sequence classification for BERT/RoBERTa checkpoints; PEFT's default targets for them are query and value. */
export const bertArchitecture: Architecture = {
  modelTypes: Object.keys(BERT_PREFIXES),
  defaultTargetModules: ['query', 'value'],
  tasks: ['sequence-classification'],
  build: (options) => buildBert(options),
};
