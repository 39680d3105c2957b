/**
 * Full fine-tuning output (`trainAll`): the trained tensors written back as the model folder's
 * `model.safetensors`, under the keys the checkpoint stored them with (hub-style `h.0.attn…`), so
 * the folder stays a plain Hugging Face model.
 */
import { join } from 'node:path';
import { writeSafetensors } from '../formats/safetensorsWriter.js';
import type { TensorToWrite } from '../formats/safetensorsWriter.js';
import type { AdapterTensors, TrainerInfo } from './types.js';

/**
 * Writes every saved tensor of a trainAll run as `dir/model.safetensors` (F32, replaced
 * atomically). Tensors without a checkpoint key (new heads) are stored under their model name.
 */
export async function writeFullModel(dir: string, adapter: AdapterTensors, info: Pick<TrainerInfo, 'saved'>, metadata?: Readonly<Record<string, string>>): Promise<void> {
  if (info.saved.length === 0) throw new Error('writeFullModel: the trainer has no fully trained tensors (was it built with trainAll?)');
  const tensors = new Map<string, TensorToWrite>();
  for (const s of info.saved) {
    const data = adapter.saved?.get(s.name);
    if (data === undefined) throw new Error(`writeFullModel: no value for ${s.name}`);
    tensors.set(s.key ?? s.name, { dtype: 'F32', shape: s.shape, data });
  }
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt', ...metadata });
}
