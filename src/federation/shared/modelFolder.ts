/**
 * A model folder written with its adapted weights replaced: what the host's final/model and
 * `--save-adapters` bases are, so they load as models (`fedex eval --model`, `fedex aggregate --base`).
 */
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Matrix } from '../../core/tensor.js';
import { openSafetensors } from '../../formats/safetensors.js';
import { createSafetensorsWriter } from '../../formats/safetensorsWriter.js';

/**
 * Copies a model folder with the adapted weights replaced by `weights` (float32; stored layout).
 * Other tensors are copied byte for byte; config and tokenizer files are copied.
 */
export async function writeModelFolder(from: string, to: string, weights: ReadonlyMap<string, Matrix<Float32Array>>, baseKeys: ReadonlyMap<string, string>): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const name of await readdir(from)) {
    if (name === 'config.json' || name.startsWith('tokenizer') || name === 'generation_config.json' || name === 'special_tokens_map.json' || name === 'vocab.json' || name === 'merges.txt') {
      await copyFile(join(from, name), join(to, name));
    }
  }
  const reader = await openSafetensors(join(from, 'model.safetensors'));
  try {
    const replaced = new Map<string, Float32Array>();
    for (const [path, key] of baseKeys) {
      const w = weights.get(path);
      if (w === undefined) throw new Error(`writeModelFolder: no weight for module ${path}`);
      const stored = reader.tensors.has(key) ? key : [...reader.tensors.keys()].find((k) => k.endsWith(`.${key}`) || key.endsWith(`.${k}`));
      if (stored === undefined) throw new Error(`writeModelFolder: ${from}/model.safetensors has no tensor ${key}`);
      replaced.set(stored, w.data);
    }
    const entries = [...reader.tensors.values()].map((t) => ({ name: t.name, dtype: replaced.has(t.name) ? 'F32' as const : t.dtype, shape: t.shape }));
    const writer = await createSafetensorsWriter(join(to, 'model.safetensors'), entries, { ...reader.metadata, format: 'pt' });
    try {
      for (const t of reader.tensors.values()) await writer.writeTensor(t.name, replaced.get(t.name) ?? await reader.readRaw(t.name));
    } catch (err) {
      await writer.abort();
      throw err;
    }
    await writer.close();
  } finally {
    await reader.close();
  }
}

/**
 * The writer of `from`'s model folder with the given modules' weights replaced: what a federation's
 * `writeModel` is for a model folder (`modules`: module path and checkpoint key of its weight).
 */
export function modelFolderWriter(from: string, modules: readonly { readonly path: string; readonly baseKey: string }[]): (to: string, weights: ReadonlyMap<string, Matrix<Float32Array>>) => Promise<void> {
  const baseKeys = new Map(modules.map((m) => [m.path, m.baseKey]));
  return (to, weights) => writeModelFolder(from, to, weights, baseKeys);
}
