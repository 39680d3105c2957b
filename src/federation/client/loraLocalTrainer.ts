/**
 * The real `LocalTrainer`: a federation client's local training on top of the LoRA trainer of
 * src/trainer (onnxruntime, in a worker thread so the socket keeps answering pings). Each round it
 * starts from the global adapter and the client's current base — FedEx's updated W0 master copies
 * are passed as `baseOverrides` — trains for the federation's local steps or epochs, and returns
 * the adapter with the example count and mean train loss.
 *
 * The trainer is built lazily on the first round, from the federation's settings in `welcome`
 * (rank, alpha, target modules, batch size, learning rate, seed; FFA-LoRA freezes A, Fed-SB trains
 * only LoRA-SB's R between frozen A and B), and rebuilt
 * only when those change. Its adapted modules must match the federation's layout exactly.
 */
import type { DataReport } from '../../trainer/data/report.js';
import type { LoraSettings } from '../../model/types.js';
import type { Device } from '../../runtime/session.js';
import type { ShardSpec } from '../../trainer/data/pipeline.js';
import type { EvalOptions, EvalResult, LoraTrainer, TrainerSetup } from '../../trainer/types.js';
import type { Matrix } from '../../core/tensor.js';
import type { AdapterLayout } from '../protocol/adapterTensors.js';
import { ClientError } from './errors.js';
import type { BaseUpdateInfo, FederationSettings, LocalTrainer, TrainConfig, TrainResult } from './trainer.js';
import type { Adapter } from '../../core/lora.js';
import type { BasePrecision } from '../../model/basePrecision.js';
import type { RecomputeMode } from '../../trainer/memoryPlan.js';

/** Builds a LoRA trainer (src/trainer `createTrainer`; injected so tests can use the in-process one). */
export type TrainerFactory = (setup: TrainerSetup, options?: { worker?: boolean }) => Promise<LoraTrainer>;

/** One step of local training (with the round it belongs to). */
export interface OnnxStepProgress {
  readonly round: number;
  readonly step: number;
  readonly totalSteps: number;
  readonly loss: number;
  readonly tokensPerSecond: number;
}

/** What the client trains on and where. The federation's own settings come from `welcome`. */
export interface OnnxTrainerOptions {
  readonly createTrainer: TrainerFactory;
  readonly modelDir: string;
  /** JSONL path or `task:NAME` (src/trainer/data). */
  readonly data: string;
  readonly evalData?: string;
  /** This client's share of `data` (simulations); absent = all of it. */
  readonly shard?: ShardSpec;
  readonly device: Device;
  readonly threads?: number;
  /** Default 64. */
  readonly seqLen?: number;
  /** Default 'adamw'. */
  readonly optimizer?: 'adamw' | 'sgd';
  /** Run in a worker thread (default true). */
  readonly worker?: boolean;
  /** Seed of data order and dropout; default the federation's seed. */
  readonly seed?: number;
  /** Evaluate the trained local adapter each round and report it as metrics `evalLoss`/`evalAccuracy`. */
  readonly evaluateLocal?: boolean;
  /** Pack language-modelling examples into full rows instead of padding each (`--pack`). */
  readonly packing?: boolean;
  /**
   * Precision of the frozen base weights (`--base-precision`; src/model/basePrecision.ts). The bases
   * of the adapted modules stay float32 whatever it is: they receive FedEx residuals (TrainerSetup.float32AdaptedBases).
   */
  readonly basePrecision?: BasePrecision;
  /** Activation recomputation per block (`--recompute`; TrainerSetup.recompute). */
  readonly recompute?: RecomputeMode;
  /** Told what encoding did to the data (records cut at `seqLen`, packing) each time a trainer is built. */
  readonly onData?: (report: DataReport) => void;
  readonly onProgress?: (p: OnnxStepProgress) => void;
}

/** The LoRA settings a federation implies. */
export function federationLora(config: Pick<FederationSettings, 'rank' | 'alpha' | 'rsLora' | 'targetModules' | 'method' | 'layout'>): LoraSettings {
  const ranks = new Set(config.layout.map((m) => m.rank));
  if (ranks.size > 1 || (ranks.size === 1 && !ranks.has(config.rank))) {
    throw new ClientError('C_BASE_LAYOUT', `the federation uses per-module ranks ${[...ranks].join(', ')}; this trainer supports one rank (r = ${config.rank}) for every module`);
  }
  return {
    r: config.rank,
    alpha: config.alpha,
    useRslora: config.rsLora,
    dropout: 0,
    targetModules: [...config.targetModules],
    freezeA: config.method === 'ffa',
    modulesToSave: [],
    ...(config.method === 'fedsb' ? { loraSb: true } : {}),
  };
}

/** Throws `C_BASE_LAYOUT` naming the first difference between the trainer's modules and the federation's layout. */
export function checkTrainerLayout(trainer: Pick<LoraTrainer, 'modules'>, layout: AdapterLayout, modelDir: string): void {
  const mine = new Map(trainer.modules.map((m) => [m.path, m]));
  for (const m of layout) {
    const t = mine.get(m.module);
    if (t === undefined) {
      throw new ClientError('C_BASE_LAYOUT', `the federation adapts module ${m.module}, which the model in ${modelDir} does not adapt (its modules: ${[...mine.keys()].slice(0, 4).join(', ')}${mine.size > 4 ? ', …' : ''})`);
    }
    const fan = t.layout === 'conv1d';
    if (t.inFeatures !== m.in || t.outFeatures !== m.out || fan !== (m.fanInFanOut === true)) {
      throw new ClientError('C_BASE_LAYOUT',
        `module ${m.module}: the federation expects in ${m.in}, out ${m.out}${m.fanInFanOut ? ', fanInFanOut' : ''}; the local model has in ${t.inFeatures}, out ${t.outFeatures}${fan ? ', fanInFanOut' : ''}`);
    }
  }
  if (mine.size !== layout.length) {
    const extra = [...mine.keys()].filter((k) => !layout.some((m) => m.module === k));
    throw new ClientError('C_BASE_LAYOUT', `the local model adapts ${extra.length} module(s) the federation does not (${extra.slice(0, 3).join(', ')}); use the federation's target modules`);
  }
}

/**
 * Float32 base weights the trainer should use instead of the checkpoint's (none at revision 0 unless
 * some were adjusted for a truncated start: the checkpoint is the pristine base).
 */
export function baseOverrides(base: Pick<BaseUpdateInfo, 'revision' | 'modules' | 'adjustedModules'>): ReadonlyMap<string, Float32Array> | undefined {
  if (base.revision === 0 && (base.adjustedModules ?? []).length === 0) return undefined;
  return new Map([...base.modules].map(([k, m]) => [k, m.data]));
}

/** A LocalTrainer backed by src/trainer, with evaluation of any (adapter, base) state. */
export interface OnnxLocalTrainer extends LocalTrainer {
  /** Evaluates `adapter` on the base `weights` (adapted modules, stored layout; pristine when absent). */
  evaluate(settings: FederationSettings, adapter: Adapter, weights?: ReadonlyMap<string, Matrix<Float32Array>>, options?: EvalOptions): Promise<EvalResult>;
  /** The built trainer for these settings (built on first use); checks its modules against `settings.layout` unless told not to. */
  trainerFor(settings: FederationSettings, options?: { checkLayout?: boolean }): Promise<LoraTrainer>;
  dispose(): Promise<void>;
}

/** Creates the trainer; nothing is built until the first round. */
export function createOnnxTrainer(options: OnnxTrainerOptions): OnnxLocalTrainer {
  let current: { key: string; trainer: Promise<LoraTrainer> } | undefined;

  const trainerFor = async (config: FederationSettings, check: { checkLayout?: boolean } = {}): Promise<LoraTrainer> => {
    const lora = federationLora(config);
    const setup: TrainerSetup = {
      modelDir: options.modelDir,
      data: options.data,
      ...(options.evalData !== undefined ? { evalData: options.evalData } : {}),
      ...(options.shard !== undefined ? { shard: options.shard } : {}),
      lora,
      batchSize: config.batchSize,
      seqLen: options.seqLen ?? 64,
      seed: options.seed ?? config.seed,
      optimizer: options.optimizer ?? 'adamw',
      lr: config.lr,
      device: options.device,
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      ...(options.packing === true ? { packing: true } : {}),
      ...(options.basePrecision !== undefined ? { basePrecision: options.basePrecision, float32AdaptedBases: true } : {}),
      ...(options.recompute !== undefined ? { recompute: options.recompute } : {}),
    };
    const key = JSON.stringify(setup);
    let built = false;
    if (current?.key !== key) {
      const previous = current;
      current = { key, trainer: options.createTrainer(setup, { worker: options.worker ?? true }) };
      built = true;
      if (previous !== undefined) await (await previous.trainer.catch(() => undefined))?.dispose();
    }
    const trainer = await current.trainer;
    if (built) options.onData?.(trainer.info.data);
    if (check.checkLayout !== false) checkTrainerLayout(trainer, config.layout, options.modelDir);
    return trainer;
  };

  return {
    trainerFor,
    async train(round: number, global: Adapter, base: BaseUpdateInfo, config: TrainConfig, signal: AbortSignal): Promise<TrainResult> {
      const trainer = await trainerFor(config);
      const overrides = baseOverrides(base);
      const outcome = await trainer.train(
        { adapter: { modules: global }, ...(overrides !== undefined ? { baseOverrides: overrides } : {}) },
        { ...(config.localSteps !== undefined ? { steps: config.localSteps } : { epochs: config.localEpochs }), lr: config.lr, resetOptimizer: config.resetOptimizer },
        { signal, onProgress: (p) => options.onProgress?.({ round, step: p.step, totalSteps: p.totalSteps, loss: p.loss, tokensPerSecond: p.tokensPerSecond }) },
      );
      const metrics: Record<string, number> = { tokens: outcome.tokens, seconds: outcome.seconds };
      if (options.evaluateLocal === true) {
        const e = await trainer.evaluate({ adapter: outcome.adapter, ...(overrides !== undefined ? { baseOverrides: overrides } : {}) }, { signal, exactMatch: false });
        metrics.evalLoss = e.loss;
        if (e.accuracy !== undefined) metrics.evalAccuracy = e.accuracy;
      }
      return { adapter: outcome.adapter.modules, numExamples: outcome.numExamples, trainLoss: outcome.trainLoss, steps: outcome.steps, metrics };
    },
    async evaluate(settings, adapter, weights, evalOptions) {
      const trainer = await trainerFor(settings);
      const overrides = weights !== undefined ? new Map([...weights].map(([k, m]) => [k, m.data])) : undefined;
      return trainer.evaluate({ adapter: { modules: adapter }, ...(overrides !== undefined ? { baseOverrides: overrides } : {}) }, evalOptions);
    },
    async dispose() {
      const c = current;
      current = undefined;
      if (c !== undefined) await (await c.trainer.catch(() => undefined))?.dispose();
    },
  };
}
