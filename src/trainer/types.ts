/**
 * The trainer's public types: what a LoRA trainer is set up with, what it trains from and returns,
 * and the progress it reports. Implemented in-process by `InProcessTrainer` and across a
 * worker_threads boundary by `WorkerTrainer`; `createTrainer` (loraTrainer.ts) picks one.
 */
import type { LoraFactors } from '../core/lora.js';
import type { BasePrecision } from '../model/basePrecision.js';
import type { RecomputeMode } from './memoryPlan.js';
import type { AdaptedModule, LoraSettings, ModelTask } from '../model/types.js';
import type { Device, OrtLogLevel } from '../runtime/session.js';
import type { ShardSpec } from './data/pipeline.js';
import type { DeviceForm } from './deviceForm.js';
import type { DataReport } from './data/report.js';
import type { BaseStorageSummary } from './frozenWeights.js';
import type { BatchPlan } from './memoryPlan.js';
import type { ScheduleKind } from './schedule.js';

/** Everything a trainer is built from. Plain data (it crosses to the worker). */
export interface TrainerSetup {
  /** Hugging Face model folder: config.json + model.safetensors (+ tokenizer.json). */
  readonly modelDir: string;
  /** JSONL path or `task:NAME[?count=N&seed=S&evalShare=F&evalCount=N]` (src/trainer/data). */
  readonly data: string;
  /** Same forms; default: a held-out split of `data` (a task's eval split, or 10 % of a file). */
  readonly evalData?: string;
  /** This client's part of `data` (federated runs); the eval set is not sharded. */
  readonly shard?: ShardSpec;
  readonly lora: LoraSettings;
  /** Default: `sequence-classification` for classification data, else `causal-lm`. */
  readonly task?: ModelTask;
  /**
   * Examples per micro-batch. When a step at this size would not fit {@link memoryBudgetBytes},
   * each batch is split into smaller micro-batches and accumulated (same optimizer steps; see
   * TrainerInfo.memory).
   */
  readonly batchSize: number;
  /** Longest sequence; longer examples are cut on the right. */
  readonly seqLen: number;
  /** Seeds data order, dropout and the held-out split; same seed + data → bit-identical adapter. */
  readonly seed: number;
  readonly optimizer: 'adamw' | 'sgd';
  /** Peak learning rate (a run may override it). */
  readonly lr: number;
  readonly warmupSteps?: number;
  /** Default 'constant'. */
  readonly schedule?: ScheduleKind;
  /** Decoupled weight decay (AdamW; default 0) or L2 (SGD; default 0). */
  readonly weightDecay?: number;
  /** Clip the global gradient norm to this value; default none. */
  readonly maxGradNorm?: number;
  /** Micro-batches per optimizer step; default 1. */
  readonly gradAccumulation?: number;
  /** Pack language-modelling examples into full rows instead of padding each one (text/tokenized data). Default false. */
  readonly packing?: boolean;
  /** Examples per evaluation batch; default batchSize. */
  readonly evalBatchSize?: number;
  /**
   * Full fine-tuning (BuildOptions.trainAll): every checkpoint tensor is trained and returned in
   * `AdapterTensors.saved` (no LoRA modules). Used to pretrain the shipped tiny model.
   */
  readonly trainAll?: boolean;
  /** Default 'cpu'. */
  readonly device: Device;
  /**
   * How the graphs are compiled and fed (deviceForm.ts); default: the device's. Tests run the
   * WebGPU form on the CPU to check it against the graphs as built.
   */
  readonly form?: DeviceForm;
  /** onnxruntime intra-op threads; default: all cores. */
  readonly threads?: number;
  /**
   * onnxruntime's own log for the trainer's sessions, written to stderr by the native library
   * (`verbose` lists where every node runs: "Node placements"). Default: none.
   */
  readonly ortLogLevel?: OrtLogLevel;
  /**
   * Bytes a training step (with evaluation) may use; batches that would need more are split
   * (src/trainer/memoryPlan.ts). Default: 60 % of the memory available when the trainer is built
   * (the smaller of free memory and a container's limit); for cuda and webgpu the same host rule,
   * since there is no portable query of GPU memory: give the GPU's budget here.
   */
  readonly memoryBudgetBytes?: number;
  /**
   * Precision the frozen base weights are held in (src/model/basePrecision.ts, docs/devices.md):
   * fp32 (default), fp16, bf16 or int4, widened to float32 inside the graph where used; the LoRA
   * factors, their gradients, the optimizer state and the loss stay float32.
   */
  readonly basePrecision?: BasePrecision;
  /**
   * Keep the base weights of the LoRA-adapted modules in float32 whatever basePrecision says: in a
   * federation they receive FedEx residuals (`baseOverrides`), which a bf16 or int4 base cannot
   * absorb. fedex join and simulate set it.
   */
  readonly float32AdaptedBases?: boolean;
  /**
   * Activation recomputation (gradient checkpointing) per transformer block (src/graph/autodiff.ts,
   * memoryPlan.ts): `auto` (default) turns it on when one row at seqLen does not fit the memory
   * budget without it; `on` always, `off` never.
   */
  readonly recompute?: RecomputeMode;
}

/** An adapter as the trainer takes and returns it. */
export interface AdapterTensors {
  /** Module path → factors A `[r, in]`, B `[out, r]`, float32 (src/core/lora.ts). */
  readonly modules: ReadonlyMap<string, LoraFactors>;
  /** `modules_to_save` tensors by their name in the HF model class (`score.weight`; PEFT stores `base_model.model.<name>`). */
  readonly saved?: ReadonlyMap<string, Float32Array>;
}

/** A trained tensor kept whole (PEFT `modules_to_save`). */
export interface SavedTensor {
  /** Name in the HF model class, e.g. `score.weight` (the key in {@link AdapterTensors.saved}). */
  readonly name: string;
  /** Graph input name. */
  readonly input: string;
  /** Checkpoint key it started from; undefined for a new head. */
  readonly key?: string;
  readonly shape: readonly number[];
}

/** Facts about a built trainer. */
export interface TrainerInfo {
  /** What is adapted: paths, shapes, layouts, base keys. */
  readonly modules: readonly AdaptedModule[];
  readonly saved: readonly SavedTensor[];
  readonly task: ModelTask;
  /** The LoRA settings in force (target modules resolved to the architecture's defaults when none were given). */
  readonly lora: LoraSettings;
  /** LoRA scaling s (alpha/r or alpha/√r) of the modules no rank_pattern / alpha_pattern key matches; any module's: `moduleLora(lora, path)` (src/model/targetModules.ts). */
  readonly scaling: number;
  /** Training examples of this trainer's shard, after encoding. */
  readonly trainExamples: number;
  readonly evalExamples: number;
  /** Class names (classification). */
  readonly labelNames?: readonly string[];
  /** onnxruntime device the sessions run on. */
  readonly device: Device;
  /** The memory estimate, the budget, and the micro-batches each requested batch runs as. */
  readonly memory: BatchPlan;
  /** What encoding did to the data: records cut at the sequence length (count, tokens dropped), packing. */
  readonly data: DataReport;
  /** How the frozen base weights are held: by precision, and the rounding they carry. */
  readonly base: BaseStorageSummary;
}

/** Reported after every optimizer step. */
export interface TrainProgress {
  /** Steps done in this run (1-based once the first is done). */
  readonly step: number;
  readonly totalSteps: number;
  /** Mean loss of this step's micro-batches (token-weighted). */
  readonly loss: number;
  readonly lr: number;
  /** Real (unpadded) tokens per second since the run started. */
  readonly tokensPerSecond: number;
  readonly etaSeconds: number;
  /** 0-based epoch of the data stream the step's last micro-batch came from. */
  readonly epoch: number;
}

/** Where a run starts from. */
export interface TrainStart {
  readonly adapter: AdapterTensors;
  /** Module path → float32 W0 in stored layout (FedEx's updated base); replaces the checkpoint's W0 for this run. */
  readonly baseOverrides?: ReadonlyMap<string, Float32Array>;
}

/** How long a run is. */
export interface TrainRun {
  /** Optimizer steps; takes precedence over epochs. */
  readonly steps?: number;
  /** Passes over this trainer's training data (continuing where the last run stopped). */
  readonly epochs?: number;
  /** Peak learning rate of this run; default the setup's. */
  readonly lr?: number;
  /** Start the optimizer state afresh (default true: once per round, as in the FedEx-LoRA paper). */
  readonly resetOptimizer?: boolean;
}

/** Progress callback and cancellation. */
export interface TrainHooks {
  readonly onProgress?: (p: TrainProgress) => void;
  /** Aborting stops the run at the next micro-batch; the promise rejects with an AbortError. */
  readonly signal?: AbortSignal;
}

/** What a run returns. */
export interface TrainOutcome {
  readonly adapter: AdapterTensors;
  /** Training examples (batch rows) seen in this run. */
  readonly numExamples: number;
  /** Token-weighted mean training loss over the run. */
  readonly trainLoss: number;
  readonly steps: number;
  /** Real (unpadded) tokens processed. */
  readonly tokens: number;
  readonly seconds: number;
}

/** Options of {@link LoraTrainer.evaluate}. */
export interface EvalOptions {
  /** Another dataset spec; default the trainer's eval set. */
  readonly data?: string;
  readonly maxExamples?: number;
  /** Greedy-decoding exact match for prompt/completion data; default true. */
  readonly exactMatch?: boolean;
  readonly signal?: AbortSignal;
}

/** Evaluation figures. */
export interface EvalResult {
  /** Mean loss per scored token (causal LM) or per example (classification). */
  readonly loss: number;
  readonly perplexity: number;
  /** Classification: share of examples whose argmax class is the label. */
  readonly accuracy?: number;
  /** Prompt/completion: share of examples whose greedy completion equals the reference. */
  readonly exactMatch?: number;
  readonly examples: number;
  /** Scored tokens (causal LM) or examples (classification). */
  readonly scored: number;
}

/** A LoRA trainer for one model and one dataset (one federated client). */
export interface LoraTrainer {
  readonly info: TrainerInfo;
  /** What is adapted (same as info.modules). */
  readonly modules: readonly AdaptedModule[];
  /** PEFT's initialisation (A Kaiming-uniform, B zero), deterministic in (seed, module path); saved tensors from the checkpoint. */
  initialAdapter(seed: number): AdapterTensors;
  /** One local training run from `start.adapter` (see {@link TrainStart}). */
  train(start: TrainStart, run: TrainRun, hooks?: TrainHooks): Promise<TrainOutcome>;
  evaluate(state: { adapter: AdapterTensors; baseOverrides?: ReadonlyMap<string, Float32Array> }, options?: EvalOptions): Promise<EvalResult>;
  dispose(): Promise<void>;
}
