// Small Gemma model folders written by the tests: a gemma2 config (soft caps, alternating sliding
// windows) narrow enough to train in seconds, and a writer that fills any Gemma config's tensors
// with seeded BF16 values.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors } from '../../../src/formats/safetensorsWriter.js';
import { bf16Uniform, familyShapes } from '../llama/checkpoints.js';

/** A gemma2 config.json at hidden 32 (2 heads of 16 over 1 kv head), 2 layers, window 8, both soft caps. */
export function gemma2Tiny(vocab: number): Record<string, unknown> {
  return {
    model_type: 'gemma2',
    hidden_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 16,
    intermediate_size: 64,
    vocab_size: vocab,
    max_position_embeddings: 128,
    sliding_window: 8,
    query_pre_attn_scalar: 16,
    attn_logit_softcapping: 50.0,
    final_logit_softcapping: 30.0,
    torch_dtype: 'bfloat16',
  };
}

/** `config` and its tensors (BF16, uniform in [−0.1, 0.1], one seed per tensor) as a model folder. */
export async function writeGemmaFolder(dir: string, config: Record<string, unknown>): Promise<void> {
  let seed = 1;
  const tensors = new Map([...familyShapes(config)].map(([k, shape]) => [k, { dtype: 'BF16' as const, shape, data: bf16Uniform(shape.reduce((a, b) => a * b, 1), seed++, -0.1, 0.1) }]));
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
}
