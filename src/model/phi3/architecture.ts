/**
 * Phi-3 and Phi-4-mini (`phi3`) as an {@link Architecture}: the Llama decoder with fused `qkv_proj`
 * and `gate_up_proj`, partial RoPE and LongRoPE (src/model/llama builds it).
 */
import { buildLlama } from '../llama/build.js';
import { PHI3_MODEL_TYPES, parseLlamaConfig } from '../llama/config.js';
import type { Architecture } from '../types.js';

/** Causal LM for Phi-3 checkpoints; PEFT's default targets for phi3 are all four linear modules, by their fused names. */
export const phi3Architecture: Architecture = {
  modelTypes: PHI3_MODEL_TYPES,
  defaultTargetModules: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'],
  tasks: ['causal-lm'],
  build: (options) => buildLlama(options),
  maxSeqLen: (config) => ({ value: parseLlamaConfig(config).maxPositions, key: 'max_position_embeddings' }),
};
