/** A ModelSource over a Hugging Face model folder (src/model/checkpoint.ts + the architecture registry). */
import { loadCheckpoint } from '../model/checkpoint.js';
import { architectureFor } from '../model/registry.js';
import { loadTokenizer } from './data/tokenizer.js';
import type { ModelSource } from './modelSource.js';

/**
 * Opens `dir` (config.json + model.safetensors or shards, tokenizer.json when present) and finds
 * its architecture; errors name the folder and what is missing or unsupported.
 */
export async function openModelSource(dir: string): Promise<ModelSource> {
  const checkpoint = await loadCheckpoint(dir);
  try {
    const architecture = architectureFor(checkpoint.config);
    return {
      name: dir,
      config: checkpoint.config,
      tensors: checkpoint.tensors,
      architecture,
      readFloat32: (key) => checkpoint.readFloat32(key),
      readStored: async (key) => ({ dtype: checkpoint.info(key).dtype, bytes: await checkpoint.readRaw(key) }),
      loadTokenizer: async () => (checkpoint.tokenizerPath === undefined ? null : loadTokenizer(checkpoint.tokenizerPath)),
      close: () => checkpoint.close(),
    };
  } catch (err) {
    await checkpoint.close();
    throw err;
  }
}
