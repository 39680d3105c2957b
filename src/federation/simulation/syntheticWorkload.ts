/**
 * A model-free workload (`fedex simulate --model synthetic`): a small GPT-2-shaped layout (Conv1D
 * c_attn and c_proj per layer), seeded Gaussian base weights, the synthetic trainer (global adapter
 * plus a seeded perturbation per client and round) and an evaluation that only measures how far
 * the effective weights are from a fixed seeded target. It runs the whole protocol, aggregation,
 * metrics and reports in seconds, without onnxruntime training; its losses mean nothing.
 */
import { loraScaling } from '../../core/lora.js';
import { createRng, fillGaussian } from '../../core/random.js';
import type { Matrix } from '../../core/tensor.js';
import { FederationClient } from '../client/client.js';
import { createSyntheticBase, createSyntheticTrainer, SYNTHETIC_TARGET_MODULES, syntheticLayout } from '../client/syntheticTrainer.js';
import type { BaseUpdateInfo, LocalTrainer, TrainConfig, TrainResult } from '../client/trainer.js';
import type { Adapter } from '../../core/lora.js';
import type { DataPart, EvalMetrics, SimulationWorkload, StepProgress } from './workload.js';

/** Options of the synthetic workload. */
export interface SyntheticWorkloadOptions {
  readonly rank: number;
  readonly alpha: number;
  readonly seed: number;
  /** Transformer layers (default 2) and hidden size (default 32). */
  readonly layers?: number;
  readonly hidden?: number;
  /** Pretend each local step takes this long (default 0). */
  readonly stepDelayMs?: number;
}

/** Creates the synthetic workload. */
export function createSyntheticWorkload(options: SyntheticWorkloadOptions): SimulationWorkload {
  const layout = syntheticLayout(options.rank, options.layers, options.hidden);
  const base = createSyntheticBase(layout, options.seed);
  const rng = createRng(options.seed ^ 0x5eed);
  const targets = new Map(layout.map((m) => [m.module, fillGaussian(new Float32Array(m.in * m.out), rng, 0.02)]));
  const scale = loraScaling(options.alpha, options.rank, false);
  const syntheticTrainer = (part: DataPart, onProgress?: (p: StepProgress) => void): LocalTrainer => {
    const inner = createSyntheticTrainer({ seed: part === null ? 99 : 100 + part.index, numExamples: 64, noise: 0.01 });
    return {
      async train(round: number, global: Adapter, info: BaseUpdateInfo, config: TrainConfig, signal: AbortSignal): Promise<TrainResult> {
        const steps = config.localSteps ?? 1;
        const result = await inner.train(round, global, info, config, signal);
        for (let step = 1; step <= steps; step++) {
          if ((options.stepDelayMs ?? 0) > 0) await new Promise((r) => setTimeout(r, options.stepDelayMs));
          onProgress?.({ round, step, totalSteps: steps, loss: result.trainLoss * (1 + 0.1 * (steps - step) / steps) });
        }
        return { ...result, numExamples: steps * config.batchSize, steps };
      },
    };
  };
  return {
    kind: 'synthetic',
    modelDir: null,
    layout,
    targetModules: SYNTHETIC_TARGET_MODULES,
    base,
    createClient(part, connection, onProgress) {
      const trainer = syntheticTrainer(part, onProgress);
      return { client: new FederationClient({ ...connection, base, trainer }), trainer };
    },
    createTrainer: (part: null, onProgress?: (p: StepProgress) => void): LocalTrainer => syntheticTrainer(part, onProgress),
    async evaluate(adapter: Adapter, weights: ReadonlyMap<string, Matrix<Float32Array>>): Promise<EvalMetrics> {
      // Root-mean-square distance of the effective weights to the seeded targets, in units of 0.01.
      let sum = 0;
      let count = 0;
      for (const m of layout) {
        const w = weights.get(m.module)!.data;
        const f = adapter.get(m.module)!;
        const t = targets.get(m.module)!;
        const r = f.a.shape[0];
        for (let o = 0; o < m.out; o++) {
          for (let x = 0; x < m.in; x++) {
            let ba = 0;
            for (let j = 0; j < r; j++) ba += f.b.data[o * r + j] * f.a.data[j * m.in + x];
            const idx = x * m.out + o;
            const d = w[idx] + scale * ba - t[idx];
            sum += d * d;
            count++;
          }
        }
      }
      return { loss: Math.sqrt(sum / count) * 100, accuracy: null, exactMatch: null, examples: 0 };
    },
    dispose: async () => undefined,
  };
}
