/** GPT-2 (`model_type` gpt2) as an {@link Architecture}: causal LM and sequence classification. */
import type { Architecture } from '../types.js';
import { buildGpt2 } from './build.js';
import { parseGpt2Config } from './config.js';

export const gpt2Architecture: Architecture = {
  modelTypes: ['gpt2'],
  // PEFT's default for GPT-2 (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
  defaultTargetModules: ['c_attn'],
  tasks: ['causal-lm', 'sequence-classification'],
  build: (options) => buildGpt2(options),
  maxSeqLen: (config) => ({ value: parseGpt2Config(config).nPositions, key: 'n_positions' }),
};
