/**
 * The seam between the federation client and local training. A `LocalTrainer` gets the round's
 * global adapter and the client's current (already updated) base weights and returns its trained
 * adapter; it does no networking. The onnxruntime trainer (src/trainer) plugs in here;
 * `syntheticTrainer.ts` is the lightweight, model-free implementation used by tests and benchmarks.
 */
import type { Adapter } from '../../core/lora.js';
import type { Matrix } from '../../core/tensor.js';
import type { ParamsOf } from '../protocol/messages.js';

/** The federation settings from `welcome.config` (method, rounds, LoRA settings, layout, …). */
export type FederationSettings = ParamsOf<'welcome'>['config'];

/** What a trainer is told about the round besides the federation settings. */
export interface TrainConfig extends FederationSettings {
  /** Time from the round's start to its deadline, as the coordinator announced it. */
  readonly timeLimitMs: number;
  /** This client's display name (for logs). */
  readonly clientName: string;
}

/** The client's base weights as the round starts, after the round's base update was applied. */
export interface BaseUpdateInfo {
  /** Base revision now held (docs/protocol.md §5.4); 0 = pristine. */
  readonly revision: number;
  /** Revision the round's update applied to, or null when the base did not change this round. */
  readonly fromRevision: number | null;
  /** Modules whose base weight changed at this round's start. */
  readonly updatedModules: readonly string[];
  /**
   * Float32 master copies of the adapted base weights, by module, in their stored layout (out × in,
   * or in × out for `fanInFanOut` modules). Read-only for the trainer: the client owns them.
   */
  readonly modules: ReadonlyMap<string, Matrix<Float32Array>>;
  /**
   * Modules whose weight in `modules` differs from the revision's: a client below the global rank
   * trains on its base plus what its truncated start drops (rankView.ts); absent when none.
   */
  readonly adjustedModules?: readonly string[];
}

/** A trainer's answer for one round. */
export interface TrainResult {
  /** The trained adapter: every layout module, shapes as in `config.layout`. */
  readonly adapter: Adapter;
  /** Training examples seen this round (weighting `examples`). */
  readonly numExamples: number;
  /** Mean training loss over the round. */
  readonly trainLoss: number;
  readonly steps?: number;
  /** Other scalar metrics (eval loss, accuracy, …); keys match `^[A-Za-z0-9_.:/-]{1,64}$`. */
  readonly metrics?: Readonly<Record<string, number>>;
}

/** Local training for one client. Implementations must stop promptly (reject) when `signal` aborts. */
export interface LocalTrainer {
  train(round: number, global: Adapter, base: BaseUpdateInfo, config: TrainConfig, signal: AbortSignal): Promise<TrainResult>;
  /** Releases sessions, workers, files. */
  dispose?(): Promise<void>;
}
