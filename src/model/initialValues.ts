/**
 * The data a built model's trainable inputs start from: LoRA factors at PEFT's initialisation, and
 * full trainable tensors (modules_to_save, trainAll) from the checkpoint or, for a new head,
 * N(0, initStd²). All float32, by graph input name. The frozen weights are fed by the trainer
 * (src/trainer/frozenWeights.ts), in the precision it holds them in.
 */
import { createRng, fillGaussian } from '../core/random.js';
import type { Checkpoint } from './checkpoint.js';
import { initLoraFactors, moduleSeed } from './loraInit.js';
import type { ModelGraph } from './types.js';

/** Reads one checkpoint tensor as float32 (e.g. `checkpoint.readFloat32`). */
export type TensorReader = (key: string) => Promise<Float32Array>;

/**
 * Starting values of the LoRA factors (A and B of every module, A included when frozen) and of
 * the full trainable tensors, by graph input name. LoRA A is seeded per module path (see
 * loraInit.ts), so every client with the same seed starts from the same A.
 */
export async function initialTrainableValues(model: ModelGraph, seed: number, read?: TensorReader | Checkpoint): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  const inputs = new Map(model.graph.inputs.map((v) => [v.name, v]));
  for (const m of model.modules) {
    const a = inputs.get(m.aInput);
    const r = a?.shape[0];
    if (typeof r !== 'number') throw new Error(`initialTrainableValues: LoRA input '${m.aInput}' of module '${m.path}' has no numeric rank`);
    const { a: fa, b: fb } = initLoraFactors(m.inFeatures, m.outFeatures, r, createRng(moduleSeed(seed, m.path)));
    out.set(m.aInput, fa.data);
    out.set(m.bInput, fb.data);
  }
  for (const f of model.fullTrainable ?? []) {
    if (f.key !== undefined) {
      if (read === undefined) throw new Error(`initialTrainableValues: '${f.name}' starts from checkpoint tensor '${f.key}', but no reader was given`);
      out.set(f.input, typeof read === 'function' ? await read(f.key) : await read.readFloat32(f.key));
    } else {
      const n = f.shape.reduce((x, y) => x * y, 1);
      out.set(f.input, fillGaussian(new Float32Array(n), createRng(moduleSeed(seed, f.name)), f.initStd));
    }
  }
  return out;
}
