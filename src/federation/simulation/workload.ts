/**
 * What a simulation trains: the adapted modules, the pristine base, a trainer per client (its share
 * of the data) or on the pooled data, and the evaluation of a global state on the held-out set. The
 * real workload (`onnxWorkload.ts`) trains a model with onnxruntime; the synthetic one
 * (`syntheticWorkload.ts`) has no model and exists to exercise the orchestration quickly.
 */
import type { Matrix } from '../../core/tensor.js';
import type { BaseSource } from '../shared/baseWeights.js';
import type { FederationClient, FederationClientOptions } from '../client/client.js';
import type { LocalTrainer } from '../client/trainer.js';
import type { Adapter } from '../../core/lora.js';
import type { AdapterLayout } from '../protocol/adapterTensors.js';

/**
 * The hyperparameters of a simulated federation, declared once: the CLI's flags resolve into it, the
 * federated and centralized runs take it, and the report records it.
 */
export interface SimulationHyperparameters {
  readonly clients: number;
  readonly rounds: number;
  /** Optimizer steps per client per round (the centralized run takes clients × localSteps per round). */
  readonly localSteps: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly rank: number;
  readonly alpha: number;
  readonly seed: number;
}

/** Figures of one evaluation on the held-out eval set. */
export interface EvalMetrics {
  readonly loss: number;
  /** Token (causal LM) or label (classification) accuracy, when the task has one. */
  readonly accuracy: number | null;
  /** Share of examples whose whole completion is right, when measured. */
  readonly exactMatch: number | null;
  readonly examples: number;
}

/** One step of local training, as reported while it runs. */
export interface StepProgress {
  readonly round: number;
  readonly step: number;
  readonly totalSteps: number;
  readonly loss: number;
}

/** Which data a trainer sees: client `index` of `count` (its non-IID share) or, when null, all of it. */
export type DataPart = { readonly index: number; readonly count: number } | null;

/** Where a simulated client connects and how (everything of a client but its base and trainer). */
export type SimulationConnection = Omit<FederationClientOptions, 'base' | 'trainer'>;

/** A model, a data set and how to train and evaluate on them. */
export interface SimulationWorkload {
  readonly kind: 'onnx' | 'synthetic';
  /** The model folder (base_model_name_or_path of saved adapters); null without model files. */
  readonly modelDir: string | null;
  /** Adapted modules in wire order. */
  readonly layout: AdapterLayout;
  /** PEFT target_modules that produced the layout. */
  readonly targetModules: readonly string[];
  /** The pristine base model: content hash and adapted weights. */
  readonly base: BaseSource;
  /** The trainer of the pooled data (the centralized reference); progress goes to `onProgress`. */
  createTrainer(part: null, onProgress?: (p: StepProgress) => void): LocalTrainer;
  /**
   * Client `part.index` of `part.count` on its share of the data, connected as `connection` says.
   * The real workload builds it exactly as `fedex join` does (client/modelClient.ts).
   */
  createClient(part: { readonly index: number; readonly count: number }, connection: SimulationConnection, onProgress?: (p: StepProgress) => void): { client: FederationClient; trainer: LocalTrainer };
  /** Evaluates the model `base` (adapted modules, stored layout) + `adapter` on the eval set. */
  evaluate(adapter: Adapter, base: ReadonlyMap<string, Matrix<Float32Array>>): Promise<EvalMetrics>;
  /**
   * Writes a complete model folder (config, tokenizer, model.safetensors) whose adapted weights are
   * `base`, so `fedex aggregate` can take it as `--base`; absent when the workload has no model files.
   */
  writeModel?(dir: string, base: ReadonlyMap<string, Matrix<Float32Array>>): Promise<void>;
  /** Releases workers and sessions. */
  dispose(): Promise<void>;
}
