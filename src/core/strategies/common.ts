/**
 * What every strategy does first (check the module's results, resolve the weights, average the
 * factors) and last (assemble the metrics). Small pure functions shared by fedex, fedit and ffa.
 */
import { clientLabel, validateSpec, specScaling } from '../lora.js';
import { factorsRank, padFactors, validateClientFactors } from '../clientRanks.js';
import type { LoraFactors, LoraModuleSpec } from '../lora.js';
import { resolveWeights } from '../weights.js';
import { weightedAverage } from '../average.js';
import { deviationNorms, moduleDeviation } from '../deviation.js';
import { denseBytes, factoredBytes, residualRankBound } from '../residual.js';
import { changeInner, type ModuleBaseChange } from '../baseChange.js';
import type { ClientFailure, ClientModuleResult, ModuleAggregateMetrics, ModuleGlobalState, StrategyName, StrategyOptions } from './types.js';

/** A module's round, checked and ready to aggregate. */
export interface PreparedModuleRound {
  readonly spec: LoraModuleSpec;
  readonly scale: number;
  readonly factors: readonly LoraFactors[];
  /** Each client's rank r_i (rows of its A), ≤ the spec's rank r_g. */
  readonly ranks: readonly number[];
  /** True when some client's rank is below r_g (core/clientRanks.ts). */
  readonly heterogeneous: boolean;
  /** Normalised weights aligned with `factors`. */
  readonly weights: Float64Array;
  /** Clients with a non-zero weight. */
  readonly contributors: number;
  readonly deviationMetrics: boolean;
}

/**
 * Checks a module's round: null when there is nothing usable (no results, or failures while
 * `acceptFailures` is false); otherwise validates the spec, every client's factors and the weights.
 * With `heterogeneous` a client's rank may be below the spec's (fedex and flora); otherwise it must equal it.
 */
export function prepareModuleRound(
  strategy: StrategyName,
  global: ModuleGlobalState,
  results: readonly ClientModuleResult[],
  failures: readonly ClientFailure[],
  options: StrategyOptions,
  heterogeneous = false,
): PreparedModuleRound | null {
  if (results.length === 0) return null;
  if (options.acceptFailures === false && failures.length > 0) return null;
  const spec = global.spec;
  validateSpec(spec);
  for (const r of results) {
    // Nothing silently dropped: only Fed-SB reads R, any other rule would aggregate B·A without it.
    if (r.factors.r !== undefined && strategy !== 'fedsb') throw new RangeError(`${strategy}: ${clientLabel(r.client, r.clientId)}: module '${spec.name}' carries a Fed-SB lora_R; only fedsb aggregates it`);
    validateClientFactors(spec, r.factors, r.client, r.clientId, heterogeneous, strategy);
  }
  let weights: Float64Array;
  try {
    weights = resolveWeights(options.weighting ?? 'uniform', results);
  } catch (err) {
    throw new RangeError(`${strategy}: module '${spec.name}': ${(err as Error).message}`, { cause: err });
  }
  let contributors = 0;
  for (const w of weights) if (w > 0) contributors++;
  const ranks = results.map((r) => factorsRank(r.factors));
  return {
    spec,
    scale: specScaling(spec),
    factors: results.map((r) => r.factors),
    ranks,
    heterogeneous: ranks.some((r) => r !== spec.rank),
    weights,
    contributors,
    deviationMetrics: options.deviationMetrics ?? true,
  };
}

/** The clients' factors zero-padded to the global rank (themselves when every rank is r_g). */
export function paddedFactors(round: PreparedModuleRound): readonly LoraFactors[] {
  return round.heterogeneous ? round.factors.map((f) => padFactors(f, round.spec.rank)) : round.factors;
}

/** Ā = Σ w_i A_i and B̄ = Σ w_i B_i, of the zero-padded factors (float64 accumulation, float32 result). */
export function averageFactors(round: PreparedModuleRound): LoraFactors {
  const padded = paddedFactors(round);
  return {
    a: weightedAverage(padded.map((f) => f.a), round.weights, `module '${round.spec.name}': average of lora_A`),
    b: weightedAverage(padded.map((f) => f.b), round.weights, `module '${round.spec.name}': average of lora_B`),
  };
}

/** Assembles the per-module metrics: deviation of plain averaging plus the base update's size. */
export function moduleMetrics(
  strategy: StrategyName,
  roundNumber: number,
  round: PreparedModuleRound,
  global: LoraFactors,
  failures: number,
  exact: boolean,
  baseUpdate: ModuleBaseChange | null,
): ModuleAggregateMetrics {
  const { spec } = round;
  const norms = round.deviationMetrics
    ? deviationNorms(paddedFactors(round), round.weights, global.a, global.b, round.scale)
    : { deviationNorm: NaN, idealUpdateNorm: NaN, relativeDeviation: NaN };
  const inner = baseUpdate === null ? 0 : changeInner(baseUpdate);
  return {
    ...moduleDeviation(spec.name, norms),
    strategy,
    round: roundNumber,
    clients: round.factors.length,
    failures,
    weights: [...round.weights],
    scale: round.scale,
    exact,
    residualRankBound: residualRankBound(round.contributors, spec.rank, spec.outFeatures, spec.inFeatures),
    baseUpdateInner: inner,
    baseUpdateFactoredBytes: baseUpdate?.form === 'factored' ? factoredBytes(spec.outFeatures, spec.inFeatures, inner) : 0,
    baseUpdateDenseBytes: baseUpdate === null ? 0 : denseBytes(spec.outFeatures, spec.inFeatures),
  };
}
