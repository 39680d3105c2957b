/**
 * A real, deterministic, model-free `LocalTrainer`: the "lightweight client with no training" of
 * the benchmarks and the federation tests. Its adapter is the global one plus a seeded Gaussian
 * perturbation (A kept frozen under FFA-LoRA, as FFA trains B only), so every client's update is
 * different but reproducible from (seed, round). Also a seeded synthetic base model.
 */
import { createRng, fillGaussian } from '../../core/random.js';
import type { LoraFactors } from '../../core/lora.js';
import type { Matrix } from '../../core/tensor.js';
import type { AdapterLayout } from '../protocol/adapterTensors.js';
import { baseModelHash, sha256Hex } from '../protocol/baseModel.js';
import { layoutWeights, storedShape, type BaseSource } from '../shared/baseWeights.js';
import type { BaseUpdateInfo, LocalTrainer, TrainConfig, TrainResult } from './trainer.js';
import type { Adapter } from '../../core/lora.js';

/** Options of the synthetic trainer. */
export interface SyntheticTrainerOptions {
  /** Seed of this client's perturbations (give every client its own). */
  readonly seed: number;
  /** Examples reported per round (default 100). */
  readonly numExamples?: number;
  /** Standard deviation of the perturbation of A and B (default 0.01). */
  readonly noise?: number;
  /** Train loss at round 0; it decays by 10 % per round (default 2). */
  readonly lossStart?: number;
  /** Pretend training takes this long (abortable), default 0. */
  readonly delayMs?: number;
}

function roundSeed(seed: number, round: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(round, 0x85ebca6b) ^ 0x27d4eb2f) >>> 0;
}

function waitOrAbort(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('training aborted'));
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('training aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Creates the synthetic trainer. */
export function createSyntheticTrainer(options: SyntheticTrainerOptions): LocalTrainer {
  const noise = options.noise ?? 0.01;
  const numExamples = options.numExamples ?? 100;
  const lossStart = options.lossStart ?? 2;
  return {
    async train(round: number, global: Adapter, _base: BaseUpdateInfo, config: TrainConfig, signal: AbortSignal): Promise<TrainResult> {
      if (options.delayMs !== undefined && options.delayMs > 0) await waitOrAbort(options.delayMs, signal);
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('training aborted');
      const rng = createRng(roundSeed(options.seed, round));
      const adapter = new Map<string, LoraFactors>();
      for (const m of config.layout) {
        const g = global.get(m.module);
        if (g === undefined) throw new RangeError(`syntheticTrainer: the global adapter has no module ${m.module}`);
        if (config.method === 'fedsb') {
          // Fed-SB: A and B stay as given, R moves.
          if (g.r === undefined) throw new RangeError(`syntheticTrainer: the Fed-SB global adapter has no R for module ${m.module}`);
          adapter.set(m.module, { a: g.a, b: g.b, r: { shape: g.r.shape, data: perturb(Float32Array.from(g.r.data), rng, noise) } });
          continue;
        }
        const a = Float32Array.from(g.a.data);
        if (config.method !== 'ffa') perturb(a, rng, noise);
        const b = perturb(Float32Array.from(g.b.data), rng, noise);
        adapter.set(m.module, { a: { shape: g.a.shape, data: a }, b: { shape: g.b.shape, data: b } });
      }
      const trainLoss = lossStart * 0.9 ** round * (1 + 0.05 * (rng.next() - 0.5));
      return { adapter, numExamples, trainLoss, steps: config.localSteps ?? 1, metrics: { synthetic: 1 } };
    },
  };
}

function perturb(data: Float32Array, rng: ReturnType<typeof createRng>, std: number): Float32Array {
  const delta = fillGaussian(new Float32Array(data.length), rng, std);
  for (let i = 0; i < data.length; i++) data[i] += delta[i];
  return data;
}

/** A seeded synthetic base: the adapted modules' weights and the content hash of their bytes. */
export interface SyntheticBase extends BaseSource {
  readonly modules: ReadonlyMap<string, Matrix<Float32Array>>;
}

/**
 * Gaussian base weights (std 0.02, like GPT-2's init) for every layout module, in stored layout,
 * and a content hash computed as for a one-file model holding them. `load()` returns the same
 * matrices every time (callers copy before changing them).
 */
export function createSyntheticBase(layout: AdapterLayout, seed: number, std = 0.02): SyntheticBase {
  const rng = createRng(seed);
  const modules = new Map<string, Matrix<Float32Array>>();
  let bytes = 0;
  const digests: string[] = [];
  for (const m of layout) {
    const [rows, cols] = storedShape(m);
    const data = fillGaussian(new Float32Array(rows * cols), rng, std);
    modules.set(m.module, { shape: [rows, cols], data });
    bytes += data.byteLength;
    digests.push(sha256Hex(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
  }
  const hash = baseModelHash([{ name: 'synthetic-base.bin', bytes, sha256: sha256Hex(new TextEncoder().encode(digests.join('\n'))) }]);
  return { hash, modules, load: async (wanted) => layoutWeights(modules, wanted, 'the synthetic base') };
}

/** The synthetic model's target modules (PEFT names). */
export const SYNTHETIC_TARGET_MODULES: readonly string[] = ['c_attn', 'c_proj'];

/** The synthetic model's GPT-2-shaped layout: per layer c_attn (hidden → 3·hidden) and c_proj (hidden → hidden), Conv1D. */
export function syntheticLayout(rank: number, layers = 2, hidden = 32): AdapterLayout {
  const out: { module: string; in: number; out: number; rank: number; fanInFanOut: boolean }[] = [];
  for (let l = 0; l < layers; l++) {
    out.push({ module: `transformer.h.${l}.attn.c_attn`, in: hidden, out: 3 * hidden, rank, fanInFanOut: true });
    out.push({ module: `transformer.h.${l}.attn.c_proj`, in: hidden, out: hidden, rank, fanInFanOut: true });
  }
  return out;
}
