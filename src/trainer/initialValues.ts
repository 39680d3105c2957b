/**
 * Where a built model's full trainable tensors (modules_to_save, trainAll) start: the checkpoint's
 * tensor, or for a new head N(0, initStd²) seeded by the run seed and the tensor's name. The LoRA
 * factors start from `initAdaptedModules` (src/model/loraInit.ts), seeded per module path.
 */
import { createRng, fillGaussian } from '../core/random.js';
import type { FullTrainable } from '../model/types.js';
import { deriveSeed } from './data/sampling.js';
import type { ModelSource } from './modelSource.js';

/** The float32 values `f` starts from; throws when the checkpoint's tensor does not have `f`'s size. */
export async function savedInitialValue(f: FullTrainable, seed: number, source: Pick<ModelSource, 'name' | 'readFloat32'>): Promise<Float32Array> {
  const n = f.shape.reduce((a, b) => a * b, 1);
  const data = f.key !== undefined ? await source.readFloat32(f.key) : fillGaussian(new Float32Array(n), createRng(deriveSeed(seed, 'saved', f.name)), f.initStd);
  if (data.length !== n) throw new Error(`trainer: ${source.name}: tensor ${f.key ?? f.name} has ${data.length} values, [${f.shape.join(', ')}] needs ${n}`);
  return data;
}
