/**
 * The aggregation strategy interface (Flower-style: a pure function of the round, the global state,
 * the clients' results and failures). A strategy works on ONE module at a time so that a whole model
 * streams through it module by module (peak memory ≈ one module); `round.ts` drives whole models.
 */
import type { LoraFactors, LoraModuleSpec } from '../lora.js';
import type { Matrix } from '../tensor.js';
import type { ProductBackend } from '../product.js';
import type { AggregationRule } from '../robust.js';
import type { ResidualForm } from '../residual.js';
import type { ModuleBaseChange } from '../baseChange.js';
import type { ModuleDeviation } from '../deviation.js';
import type { WeightingMode } from '../weights.js';

export type StrategyName = 'fedex' | 'fedit' | 'ffa' | 'flora' | 'fedsb';
export const STRATEGY_NAMES: readonly StrategyName[] = ['fedex', 'fedit', 'ffa', 'flora', 'fedsb'];

/** The global state of one module: its spec and the adapter the round starts from. */
export interface ModuleGlobalState {
  readonly spec: LoraModuleSpec;
  /** The global (Ā, B̄) clients started this round from; null when unknown (e.g. before round 1). */
  readonly factors: LoraFactors | null;
}

/** One client's trained factors for one module, with what its weight is made of. */
export interface ClientModuleResult {
  /** Position of the client in this round (named in errors). */
  readonly client: number;
  /** Optional stable identifier, named in errors too. */
  readonly clientId?: string;
  readonly factors: LoraFactors;
  /** Training examples this round (weighting `examples`). */
  readonly numExamples?: number;
  /** Raw weight (weighting `explicit`; normalised by the strategy). */
  readonly weight?: number;
}

/** A client that did not deliver this round. */
export interface ClientFailure {
  readonly client: number;
  readonly clientId?: string;
  readonly reason: string;
}

/** What a strategy reports for one module and round. */
export interface ModuleAggregateMetrics extends ModuleDeviation {
  readonly strategy: StrategyName;
  readonly round: number;
  /** Results aggregated, and failures reported, this round. */
  readonly clients: number;
  readonly failures: number;
  /** The normalised weights used, in the order of the results. */
  readonly weights: readonly number[];
  readonly scale: number;
  /** Whether W0 + s·B̄Ā equals Σ w_i (W0 + s·B_i A_i) after the round (up to float32 round-off). */
  readonly exact: boolean;
  /** min((k−1)·r, out, in) for the k contributing clients. */
  readonly residualRankBound: number;
  /** Inner size of the base update sent (0 when the base is unchanged). */
  readonly baseUpdateInner: number;
  /** Bytes of the base update as factors and as a dense matrix (0 and 0 when the base is unchanged). */
  readonly baseUpdateFactoredBytes: number;
  readonly baseUpdateDenseBytes: number;
  /** With `residualRank`: the rank folded and the share of ‖ΔR‖_F dropped (absent when nothing was truncated). */
  readonly residualTruncation?: { readonly rank: number; readonly exactRank: number; readonly relativeError: number };
  /**
   * A robust rule (robust.ts; absent: the weighted mean). Then `exact` compares with rule_i(W0 + s·B_i A_i),
   * the deviation norms are those of s·(rule_i(B_i A_i) − B̄Ā), and a dense base update reports inner 0.
   */
  readonly aggregation?: AggregationRule;
}

/** A strategy's answer for one module. */
export interface ModuleAggregate {
  /** The new global state: same spec, new (Ā, B̄). */
  readonly global: ModuleGlobalState;
  /**
   * What to add to the base weight W0 (through a `ProductBackend`), or null when W0 stays as is.
   * Layout-aware: `linear` W0 += scale·P·Q, `conv1d` W0 += scale·(P·Q)ᵀ.
   */
  readonly baseUpdate: ModuleBaseChange | null;
  /**
   * What the aggregate misses of the ideal update and does not fold into the base, dense out × in
   * (`linear` orientation): s·(ideal − B̄Ā) for FedIT and FFA, when the strategy formed it anyway
   * (from pre-summed uploads, or under a robust rule); the deviation metrics use it.
   */
  readonly deviation?: Matrix<Float32Array>;
  /**
   * Set when the base update is more than s·ΔR of plain averaging — FLoRA folds the whole update, and
   * with client ranks below the global rank the truncation losses are folded too: the weighted means
   * (Ā, B̄) of the zero-padded uploads, which the deviation of plain averaging is measured against.
   * A caller must then not read that deviation off the base update.
   */
  readonly plainAverage?: LoraFactors;
  readonly metrics: ModuleAggregateMetrics;
}

/** Options shared by the strategies. */
export interface StrategyOptions {
  /** How clients are weighted (default `uniform`, as in the paper). */
  readonly weighting?: WeightingMode;
  /** When false, any failure makes the round "nothing usable" (Flower's accept_failures). Default true. */
  readonly acceptFailures?: boolean;
  /**
   * Compute the deviation norms (default true). They cost two Gram matrices per module, about half
   * the time of the fused base update on CPU; when false the three norms are reported as NaN.
   */
  readonly deviationMetrics?: boolean;
  /** The aggregation rule (default `mean`); `createStrategy` honours it (a robust rule needs uniform weighting). */
  readonly aggregation?: AggregationRule;
  /** Seed of the fresh lora_A FLoRA starts every round from (default 0; the coordinator passes the federation's seed). */
  readonly seed?: number;
}

/** FedEx-specific options. */
export interface FedExOptions extends StrategyOptions {
  /** Factoring of the residual: `stacked` (k·r, the paper's form, default) or `compact` ((k−1)·r). */
  readonly residualForm?: ResidualForm;
  /**
   * The paper's "best inexact" variant: fold only the best rank-k approximation of each round's
   * residual (core/lowRank.ts), so the downlink is k·(out + in) per module; what is dropped is
   * reported (`residualTruncation`) and the round is no longer exact. Absent: the exact residual.
   */
  readonly residualRank?: number;
}

/** A federated aggregation rule for LoRA factors, applied module by module. */
export interface AggregationStrategy {
  readonly name: StrategyName;
  /** True when the rule reproduces Σ w_i (W0 + s·B_i A_i) exactly (FedEx, FFA, FLoRA, Fed-SB). */
  readonly exact: boolean;
  /** True when the rule changes the base weight (FedEx, FLoRA). */
  readonly updatesBase: boolean;
  /**
   * True when clients may train at a rank below the module's (global) rank, each starting from the
   * global adapter truncated to its rank (core/clientRanks.ts): the rule folds what the truncation
   * drops into the base, so it stays exact (FedEx, FLoRA).
   */
  readonly heterogeneousRanks?: boolean;
  /**
   * True when lora_A stays frozen at its shared seeded init (FFA-LoRA): every upload must carry the
   * global lora_A bit for bit, so the server refuses one that does not as it arrives, and uploads
   * must travel in float32 (a half-precision uplink would round A).
   */
  readonly frozenA?: boolean;
  /**
   * A robust rule (absent: the weighted mean). Such a strategy is not linear in the uploads: nothing
   * may be pre-summed as they arrive, and its base update is dense.
   */
  readonly aggregation?: AggregationRule;
  /**
   * Aggregates one module. Returns null ("nothing usable") when there are no results or failures are
   * not accepted; throws on malformed input (wrong shapes, non-finite values, bad weights, FFA with
   * differing A), naming the client, module and tensor.
   */
  aggregate(round: number, global: ModuleGlobalState, results: readonly ClientModuleResult[], failures: readonly ClientFailure[]): ModuleAggregate | null;
  /**
   * A streaming accumulator for one module (absent: the strategy needs every upload at the close, as
   * a robust rule does). Only for rules linear in the uploads: see `ModuleAccumulator`.
   */
  accumulator?(spec: LoraModuleSpec, backend: ProductBackend): ModuleAccumulator;
}

/**
 * A module's uploads summed as they arrive, for a strategy whose aggregate is linear in them. With
 * many clients the close's one heavy product is Σ w_i·B_i·A_i (out × in); an accumulator adds each
 * client's c_i·B_i·A_i while other uploads are still on the wire, and `finish` needs only the sums.
 */
export interface ModuleAccumulator {
  /** Adds c·B·A for one client's factors (c: its raw weight, 1 for uniform weighting); calls are summed in order. */
  add(factors: LoraFactors, coefficient: number): Promise<void>;
  /**
   * The module's aggregate from the sums, as `aggregate` would give it up to float32 round-off, for
   * `results`: exactly the clients added, with normalised weights c_i / Σc (the caller checks); null
   * when nothing is usable.
   */
  finish(round: number, global: ModuleGlobalState, results: readonly ClientModuleResult[], failures: readonly ClientFailure[]): Promise<ModuleAggregate | null>;
}
