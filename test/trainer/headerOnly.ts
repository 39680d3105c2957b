/**
 * Model folders at real shapes without their weights, for the memory plan: config.json and a
 * model.safetensors whose header lists every tensor of the config while the data section is a hole
 * (the file is extended to its declared size without writing: a sparse file, a few kB on disk). The
 * safetensors reader opens it like any checkpoint; a read of the data would return zeros.
 */
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planHeader, referenceOrder } from '../../src/formats/safetensorsHeader.js';
import type { TensorSpec } from '../../src/formats/safetensorsHeader.js';

/** Real configs in test/fixtures/configs (copies of the Hugging Face config.json files). */
export const REAL_CONFIGS = {
  /** meta-llama/Llama-3.2-1B */
  'llama-3.2-1b': fileURLToPath(new URL('../fixtures/configs/llama-3.2-1b.json', import.meta.url)),
  /** meta-llama/Llama-3.1-8B */
  'llama-3.1-8b': fileURLToPath(new URL('../fixtures/configs/llama-3.1-8b.json', import.meta.url)),
} as const;

/** Every tensor a Llama checkpoint of `config` stores, in BF16, under the Hugging Face names. */
export function llamaTensors(config: Readonly<Record<string, unknown>>): TensorSpec[] {
  const n = (key: string): number => config[key] as number;
  const [d, ff, layers, heads, kv, vocab] = [n('hidden_size'), n('intermediate_size'), n('num_hidden_layers'), n('num_attention_heads'), n('num_key_value_heads'), n('vocab_size')];
  const hd = (config.head_dim as number | undefined) ?? d / heads;
  const t = (name: string, shape: number[]): TensorSpec => ({ name, dtype: 'BF16', shape });
  const out = [t('model.embed_tokens.weight', [vocab, d]), t('model.norm.weight', [d])];
  if (config.tie_word_embeddings !== true) out.push(t('lm_head.weight', [vocab, d]));
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    out.push(
      t(`${p}.input_layernorm.weight`, [d]),
      t(`${p}.post_attention_layernorm.weight`, [d]),
      t(`${p}.self_attn.q_proj.weight`, [heads * hd, d]),
      t(`${p}.self_attn.k_proj.weight`, [kv * hd, d]),
      t(`${p}.self_attn.v_proj.weight`, [kv * hd, d]),
      t(`${p}.self_attn.o_proj.weight`, [d, heads * hd]),
      t(`${p}.mlp.gate_proj.weight`, [ff, d]),
      t(`${p}.mlp.up_proj.weight`, [ff, d]),
      t(`${p}.mlp.down_proj.weight`, [d, ff]),
    );
  }
  return out;
}

/** Writes `dir` for a real config: config.json and the header-only model.safetensors (see the module comment). */
export async function writeHeaderOnlyCheckpoint(dir: string, configPath: string): Promise<{ parameters: number; fileBytes: number }> {
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  const tensors = llamaTensors(config);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const file = join(dir, 'model.safetensors');
  const layout = planHeader(referenceOrder(tensors), { format: 'pt' }, file);
  const fh = await open(file, 'w');
  try {
    await fh.write(layout.headerBytes);
    await fh.truncate(layout.fileSize);
  } finally {
    await fh.close();
  }
  return { parameters: tensors.reduce((s, x) => s + x.shape.reduce((a, b) => a * b, 1), 0), fileBytes: layout.fileSize };
}
