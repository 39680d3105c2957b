/**
 * The bridge between the server loop and the pure strategy: runs a round's accepted updates
 * through the core's `aggregateModules` (streaming, one module's update alive at a time; a module
 * whose uploads were summed as they arrived is finished from its accumulator, see accumulator.ts),
 * folds each base change the strategy returns into the coordinator's float32 master copy, and
 * records the step in the form it will travel: factored (P, Q) when (out + in)·inner < out·in, else
 * dense D = s·P·Q — applied to the master exactly as clients will apply it, so both ends hold the
 * same bits. The strategy runs without its own deviation metrics; the core's
 * `deviationNormsBounded` computes them at bounded cost, and roundFigures.ts the adapter drift norms.
 */
import { applyBaseChange, type BaseChange } from '../../core/baseChange.js';
import { padFactors } from '../../core/clientRanks.js';
import { deviationNormsBounded } from '../../core/deviation.js';
import type { LoraFactors } from '../../core/lora.js';
import { effectiveFactors } from '../../core/loraSb.js';
import { materializeUpdate, type ProductBackend } from '../../core/product.js';
import { factoredIsSmaller } from '../../core/residual.js';
import { aggregateModules, type ClientAdapterResult } from '../../core/strategies/round.js';
import type { AggregationStrategy, ClientFailure, ModuleAggregate, ModuleGlobalState } from '../../core/strategies/types.js';
import type { Matrix } from '../../core/tensor.js';
import { resolveWeights } from '../../core/weights.js';
import type { ModuleLayout } from '../protocol/adapterTensors.js';
import { moduleLayout } from '../shared/baseWeights.js';
import type { UploadAccumulator } from './accumulator.js';
import { moduleSpecs, type FederationPlan } from './config.js';
import { adapterDrift } from './roundFigures.js';
import type { ModuleRoundRecord } from './events.js';
import type { StepModule } from './residuals.js';

/** One accepted client update. */
export interface AcceptedUpdate {
  readonly clientId: string;
  readonly adapter: ReadonlyMap<string, LoraFactors>;
  readonly numExamples: number;
  readonly trainLoss: number;
}

/** What a round's aggregation produced. */
export interface RoundAggregate {
  readonly global: Map<string, LoraFactors>;
  /** Modules whose base changed this round (empty for FedIT/FFA, or when the residual vanished). */
  readonly stepModules: StepModule[];
  readonly modules: ModuleRoundRecord[];
  /** Normalised weight of each participant, in `updates` order. */
  readonly weights: readonly number[];
  readonly loss: { mean: number; min: number; max: number };
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** Optional inputs of `aggregateRound`. */
export interface AggregateExtras {
  /** The round's uploads summed as they arrived (used for the modules it holds, when they match the round's participants). */
  readonly accumulator?: UploadAccumulator;
}

/** The normalised weights the strategy will use (to check the accumulated coefficients); empty when they cannot be resolved. */
function expectedWeights(plan: FederationPlan, updates: readonly AcceptedUpdate[]): number[] {
  try {
    return [...resolveWeights(plan.weighting, updates.map((u) => ({ numExamples: u.numExamples })))];
  } catch {
    return [];
  }
}

/**
 * Aggregates `updates` (already validated; order fixes the float summation order, so callers sort
 * them) and applies the base updates to `base` in place. Returns null when the strategy finds
 * nothing usable.
 */
export async function aggregateRound(
  plan: FederationPlan,
  strategy: AggregationStrategy,
  round: number,
  global: ReadonlyMap<string, LoraFactors>,
  base: Map<string, Matrix<Float32Array>>,
  updates: readonly AcceptedUpdate[],
  failures: readonly ClientFailure[],
  backend: ProductBackend,
  extras: AggregateExtras = {},
): Promise<RoundAggregate | null> {
  if (updates.length === 0) return null;
  const globals: ModuleGlobalState[] = moduleSpecs(plan).map((spec) => ({ spec, factors: global.get(spec.name) ?? null }));
  const results: ClientAdapterResult[] = updates.map((u, i) => ({ client: i, clientId: u.clientId, numExamples: u.numExamples, modules: u.adapter }));
  const accumulated = extras.accumulator !== undefined ? await extras.accumulator.finish(updates, expectedWeights(plan, updates)) : null;
  const stream = await aggregateModules(strategy, round, globals, results, failures, accumulated ?? undefined);
  if (stream === null) return null;
  const active = updates.filter((u) => plan.weighting === 'uniform' || u.numExamples > 0).length;
  const newGlobal = new Map<string, LoraFactors>();
  const stepModules: StepModule[] = [];
  const modules: ModuleRoundRecord[] = [];
  const byName = new Map(plan.layout.map((m) => [m.module, m]));
  let weights: readonly number[] = [];
  const ctx = { plan, base, global, updates, backend, summed: new Set(accumulated?.keys() ?? []), active };
  // One module's aggregate alive at a time.
  for await (const one of stream) {
    const done = await finishModule(ctx, byName.get(one.global.spec.name)!, one);
    newGlobal.set(done.record.module, one.global.factors!);
    if (done.step !== null) stepModules.push(done.step);
    modules.push(done.record);
    weights = one.metrics.weights;
  }
  let mean = 0;
  let min = Infinity;
  let max = -Infinity;
  updates.forEach((u, i) => {
    mean += weights[i] * u.trainLoss;
    min = Math.min(min, u.trainLoss);
    max = Math.max(max, u.trainLoss);
  });
  return { global: newGlobal, stepModules, modules, weights, loss: { mean, min, max } };
}

/** What `finishModule` needs besides the module's aggregate. */
interface ModuleContext {
  readonly plan: FederationPlan;
  readonly base: Map<string, Matrix<Float32Array>>;
  readonly global: ReadonlyMap<string, LoraFactors>;
  readonly updates: readonly AcceptedUpdate[];
  readonly backend: ProductBackend;
  /** Modules finished from summed uploads. */
  readonly summed: ReadonlySet<string>;
  readonly active: number;
}

/**
 * The form a base change travels in: a factored one stays factored when that is smaller, else it
 * becomes D = s·P·Q (scale 1), the same bits the master gets; a dense one travels as it is.
 */
async function travelling(change: BaseChange, m: ModuleLayout, backend: ProductBackend): Promise<BaseChange> {
  if (change.form === 'dense' || factoredIsSmaller(m.out, m.in, change.p.shape[1])) return change;
  // In the wire orientation (`linear`, out × in), whatever the base's stored layout.
  return { form: 'dense', d: await materializeUpdate(backend, { ...change, layout: 'linear' }), scale: 1 };
}

/** Decides a module's base step in the form it travels, folds it into the master, and records the module. */
async function finishModule(ctx: ModuleContext, m: ModuleLayout, agg: ModuleAggregate): Promise<{ step: StepModule | null; record: ModuleRoundRecord }> {
  const { backend } = ctx;
  const name = m.module;
  const factors = agg.global.factors!;
  const scale = agg.metrics.scale;
  const change = agg.baseUpdate === null ? null : await travelling(agg.baseUpdate, m, backend);
  const step: StepModule | null = change === null ? null : { module: name, ...change };
  // What the deviation norms measure: the dense residual when one was formed anyway — not when the
  // base change is more than s·ΔR (FLoRA's whole update, or truncation losses: `plainAverage`).
  const scaledResidual = agg.plainAverage === undefined && change?.form === 'dense' && change.scale === 1 ? change.d : agg.deviation;
  // The inner size the residual had before it went dense (k·r from summed uploads; 0 under a robust rule).
  const inner = ctx.summed.has(name) ? ctx.active * m.rank : agg.baseUpdate?.form === 'factored' ? agg.baseUpdate.p.shape[1] : 0;
  if (step !== null) await applyBaseChange(ctx.base.get(name)!, moduleLayout(m), step, backend);
  // Clients below the global rank, zero-padded: Σ w_i B_i A_i is unchanged by the padding.
  // Fed-SB's figures on the standard factors (A, B·R) its modules equal.
  const clients = ctx.updates.map((x) => padFactors(effectiveFactors(x.adapter.get(name)!), m.rank));
  const previous = ctx.global.get(name);
  const effective = effectiveFactors(factors);
  const record = await moduleRecord(ctx.plan, m, scale, clients, agg.metrics.weights, previous !== undefined ? effectiveFactors(previous) : undefined, effective, agg.plainAverage ?? effective, step, inner, scaledResidual, backend);
  const truncation = agg.metrics.residualTruncation;
  return { step, record: truncation !== undefined ? { ...record, residualTruncation: truncation } : record };
}

/** The clients' drift from the weighted means (FLoRA's global adapter is a fresh one, unrelated to the uploads). */
function clientDrift(averaged: LoraFactors, clients: readonly LoraFactors[]): Pick<ReturnType<typeof adapterDrift>, 'clientDeltaANorms' | 'clientDeltaBNorms'> {
  const { clientDeltaANorms, clientDeltaBNorms } = adapterDrift(averaged, averaged, clients);
  return { clientDeltaANorms, clientDeltaBNorms };
}

/** A module's figures: deviation norms (when enabled), residual form, adapter drift. */
async function moduleRecord(
  plan: FederationPlan,
  m: ModuleLayout,
  scale: number,
  clients: LoraFactors[],
  weights: readonly number[],
  previous: LoraFactors | undefined,
  factors: LoraFactors,
  averaged: LoraFactors,
  step: StepModule | null,
  inner: number,
  scaledResidual: Matrix<Float32Array> | undefined,
  backend: ProductBackend,
): Promise<ModuleRoundRecord> {
  // The deviation of plain averaging: against the weighted means (the global adapter itself, except for FLoRA).
  const norms = plan.deviationMetrics
    ? await deviationNormsBounded({ clients, weights, abar: averaged.a, bbar: averaged.b, scale, scaledResidual }, backend)
    : { deviationNorm: NaN, relativeDeviation: NaN };
  const drift = previous !== undefined ? { ...adapterDrift(previous, factors, clients), ...clientDrift(averaged, clients) } : undefined;
  return {
    module: m.module,
    deviation: finiteOrNull(norms.deviationNorm),
    relativeDeviation: finiteOrNull(norms.relativeDeviation),
    residualNorm: finiteOrNull(scale === 0 ? NaN : norms.deviationNorm / Math.abs(scale)),
    residualForm: step?.form ?? null,
    residualInnerDim: step !== null ? inner : 0,
    ...(drift !== undefined ? drift : {}),
  };
}
