/** The Llama family (`llama`, `mistral`, `qwen2`, `qwen3`) as an {@link Architecture}. */
import type { Architecture } from '../types.js';
import { buildLlama } from './build.js';
import { LLAMA_MODEL_TYPES, parseLlamaConfig } from './config.js';

/** Causal LM for Llama, Mistral, Qwen2 and Qwen3 checkpoints; PEFT's default targets for them are q_proj and v_proj. */
export const llamaArchitecture: Architecture = {
  modelTypes: LLAMA_MODEL_TYPES,
  defaultTargetModules: ['q_proj', 'v_proj'],
  tasks: ['causal-lm'],
  build: (options) => buildLlama(options),
  maxSeqLen: (config) => ({ value: parseLlamaConfig(config).maxPositions, key: 'max_position_embeddings' }),
};
