/** GPT-2 (`model_type` gpt2) as an {@link Architecture}: causal LM and sequence classification. */
import type { Architecture } from '../types.js';
import { buildGpt2 } from './build.js';

export const gpt2Architecture: Architecture = {
  modelTypes: ['gpt2'],
  // PEFT's default for GPT-2 (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
  defaultTargetModules: ['c_attn'],
  tasks: ['causal-lm', 'sequence-classification'],
  build: (options) => buildGpt2(options),
};
