// Fixtures shared by the synthetic-checkpoint tests (GPT-2/Llama and BERT/RoBERTa).
import { join } from 'node:path';
import { openSafetensors } from '../../../src/formats/safetensors.js';
import { suiteTempDir } from '../../helpers/tempDir.js';

/**
 * Fresh folders for the enclosing `describe` (or file): each call names a new subfolder `d0`, `d1`, … of a suite temp
 * folder (see suiteTempDir). Call the returned function inside hooks and tests.
 */
export function suiteFreshDirs(prefix: string): () => string {
  const tmp = suiteTempDir(prefix);
  let dirNo = 0;
  return () => join(tmp.path, `d${dirNo++}`);
}

/** Every tensor of a safetensors file: name → its dtype, shape and values as float64. */
export async function readTensors64(file: string): Promise<Map<string, { dtype: string; shape: number[]; data: Float64Array }>> {
  const reader = await openSafetensors(file);
  try {
    const out = new Map<string, { dtype: string; shape: number[]; data: Float64Array }>();
    for (const t of reader.tensors.values()) out.set(t.name, { dtype: t.dtype, shape: [...t.shape], data: await reader.readFloat64(t.name) });
    return out;
  } finally {
    await reader.close();
  }
}
