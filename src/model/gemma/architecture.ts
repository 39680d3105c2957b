/** Gemma 2 and Gemma 3 text (`gemma2`, `gemma3_text`) as an {@link Architecture}. */
import type { Architecture } from '../types.js';
import { buildGemma } from './build.js';
import { GEMMA_MODEL_TYPES, parseGemmaConfig } from './config.js';

/** Causal LM for Gemma 2 and Gemma 3 text checkpoints; PEFT's default targets for both are q_proj and v_proj. */
export const gemmaArchitecture: Architecture = {
  modelTypes: GEMMA_MODEL_TYPES,
  defaultTargetModules: ['q_proj', 'v_proj'],
  tasks: ['causal-lm'],
  build: (options) => buildGemma(options),
  maxSeqLen: (config) => ({ value: parseGemmaConfig(config).maxPositions, key: 'max_position_embeddings' }),
};
