/**
 * The real workload of `fedex simulate`: a Hugging Face model folder trained with onnxruntime
 * through src/trainer. Client i trains on its share of the data (non-IID by default, split by the
 * trainer); one more trainer on the pooled data evaluates every global model on the held-out set
 * and trains the centralized reference.
 */
import type { DataReport } from '../../trainer/data/report.js';
import type { AdaptedModule } from '../../model/types.js';
import type { Device } from '../../runtime/session.js';
import { modelBaseSource, modelManifest } from '../shared/modelBase.js';
import { createModelClient } from '../client/modelClient.js';
import { modelFolderWriter } from '../shared/modelFolder.js';
import { createOnnxTrainer, type OnnxLocalTrainer, type TrainerFactory } from '../client/loraLocalTrainer.js';
import type { FederationSettings, LocalTrainer } from '../client/trainer.js';
import type { AdapterLayout } from '../protocol/adapterTensors.js';
import type { EvalMetrics, SimulationWorkload, StepProgress } from './workload.js';
import type { BasePrecision } from '../../model/basePrecision.js';
import type { RecomputeMode } from '../../trainer/memoryPlan.js';

/** Settings of the real workload. */
export interface OnnxWorkloadOptions {
  readonly createTrainer: TrainerFactory;
  readonly modelDir: string;
  readonly data: string;
  readonly evalData?: string;
  readonly split: 'iid' | 'non-iid';
  /** Non-IID only: a Dirichlet(α) group skew instead of the dominant-group split (trainer/data/split.ts `splitDirichlet`). */
  readonly dirichletAlpha?: number;
  readonly rank: number;
  readonly alpha: number;
  /** PEFT target_modules (non-empty). */
  readonly targetModules: readonly string[];
  readonly batchSize: number;
  readonly lr: number;
  readonly seed: number;
  readonly seqLen: number;
  readonly device: Device;
  /** onnxruntime threads per trainer. */
  readonly threads?: number;
  /** Eval examples per evaluation (default: the whole eval set). */
  readonly evalExamples?: number;
  /** Greedy-decoding exact match in evaluations (default true; slower). */
  readonly exactMatch?: boolean;
  /** Run trainers in worker threads (default true). */
  readonly worker?: boolean;
  /** Pack language-modelling examples into full rows (`--pack`). */
  readonly packing?: boolean;
  /** Precision of the frozen base weights (`--base-precision`); adapted bases stay float32 (OnnxTrainerOptions.basePrecision). */
  readonly basePrecision?: BasePrecision;
  /** Activation recomputation per block (`--recompute`). */
  readonly recompute?: RecomputeMode;
  /** Told what encoding did to each trainer's data: `who` is `pooled` (evaluation, centralized) or `client i/k`. */
  readonly onData?: (who: string, report: DataReport) => void;
}

/** Federation settings for a trainer of this workload (method decides whether A is frozen). */
function settingsFor(o: OnnxWorkloadOptions, layout: AdapterLayout, hash: string, method: FederationSettings['method']): FederationSettings {
  return {
    method,
    rounds: 1,
    localSteps: 1,
    batchSize: o.batchSize,
    rank: o.rank,
    alpha: o.alpha,
    rsLora: false,
    targetModules: [...o.targetModules],
    lr: o.lr,
    seed: o.seed,
    weighting: 'uniform',
    resetOptimizer: true,
    uplinkDtype: 'float32',
    baseModelHash: hash,
    layout: layout.map((m) => ({ ...m, fanInFanOut: m.fanInFanOut === true })),
  };
}

/** Builds the workload: opens the model, builds the evaluator (which fixes the layout). */
export async function createOnnxWorkload(o: OnnxWorkloadOptions): Promise<SimulationWorkload> {
  const manifest = await modelManifest(o.modelDir);
  const common = {
    createTrainer: o.createTrainer,
    modelDir: o.modelDir,
    data: o.data,
    device: o.device,
    seqLen: o.seqLen,
    seed: o.seed,
    ...(o.evalData !== undefined ? { evalData: o.evalData } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.worker !== undefined ? { worker: o.worker } : {}),
    ...(o.packing === true ? { packing: true } : {}),
    ...(o.basePrecision !== undefined ? { basePrecision: o.basePrecision } : {}),
    ...(o.recompute !== undefined ? { recompute: o.recompute } : {}),
  };
  let onPooledProgress: ((p: StepProgress) => void) | undefined;
  const pooled: OnnxLocalTrainer = createOnnxTrainer({ ...common, onProgress: (p) => onPooledProgress?.(p), ...(o.onData !== undefined ? { onData: (r: DataReport) => o.onData!('pooled', r) } : {}) });
  // The layout is what the model adapts: build the pooled trainer first (layout unchecked) and read it off.
  let info: readonly AdaptedModule[];
  try {
    info = (await pooled.trainerFor(settingsFor(o, [], manifest.hash, 'fedit'), { checkLayout: false })).modules;
  } catch (err) {
    await pooled.dispose();
    throw err;
  }
  const layout: AdapterLayout = info.map((m) => ({ module: m.path, in: m.inFeatures, out: m.outFeatures, rank: o.rank, fanInFanOut: m.layout === 'conv1d' }));
  const evalSettings = settingsFor(o, layout, manifest.hash, 'fedit');
  const base = modelBaseSource(o.modelDir, manifest.hash, info.map((m) => ({ path: m.path, baseKey: m.baseKey })));

  return {
    kind: 'onnx',
    modelDir: o.modelDir,
    layout,
    targetModules: o.targetModules,
    base,
    createTrainer(_part: null, onProgress?: (p: StepProgress) => void): LocalTrainer {
      // The pooled trainer is also the evaluator: hand out a view whose dispose keeps it alive.
      onPooledProgress = onProgress;
      return { train: (...args) => pooled.train(...args), dispose: async () => {
        onPooledProgress = undefined;
      } };
    },
    createClient(part, connection, onProgress) {
      // Exactly what `fedex join` builds (client/modelClient.ts), sharing one base source.
      const { modelDir: _dir, ...training } = common;
      return createModelClient({
        ...connection,
        modelDir: o.modelDir,
        hash: manifest.hash,
        base,
        training: {
          ...training,
          shard: { index: part.index, count: part.count, split: o.split, seed: o.seed, ...(o.dirichletAlpha !== undefined ? { alpha: o.dirichletAlpha } : {}) },
          ...(onProgress !== undefined ? { onProgress } : {}),
          ...(o.onData !== undefined ? { onData: (r: DataReport) => o.onData!(`client ${part.index + 1}/${part.count}`, r) } : {}),
        },
      });
    },
    async evaluate(adapter, weights): Promise<EvalMetrics> {
      const e = await pooled.evaluate(evalSettings, adapter, weights, {
        ...(o.evalExamples !== undefined ? { maxExamples: o.evalExamples } : {}),
        exactMatch: o.exactMatch ?? true,
      });
      return { loss: e.loss, accuracy: e.accuracy ?? null, exactMatch: e.exactMatch ?? null, examples: e.examples };
    },
    writeModel: modelFolderWriter(o.modelDir, info),
    dispose: () => pooled.dispose(),
  };
}
