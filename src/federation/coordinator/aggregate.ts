/**
 * The bridge between the server loop and the pure strategy: runs a round's accepted updates
 * through the strategy module by module (streaming, one module's update alive at a time), folds
 * each FedEx base update into the coordinator's float32 master copy, and records the step in the
 * form it will travel: factored (P, Q) when (out + in)·inner < out·in, else dense D = s·P·Q —
 * applied to the master exactly as clients will apply it, so both ends hold the same bits. Where
 * the uploads were accumulated as they arrived (accumulator.ts) a dense D comes from the sums
 * instead, and the averaging strategy gives Ā, B̄. The strategy runs without its own deviation
 * metrics; the core's `deviationNormsBounded` computes them at bounded cost, and dashboard.ts the
 * adapter drift norms.
 */
import { deviationNormsBounded } from '../../core/deviation.js';
import type { LoraFactors } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import { createStrategy } from '../../core/strategies/registry.js';
import { checkModuleSets, moduleResults, type ClientAdapterResult } from '../../core/strategies/round.js';
import type { AggregationStrategy, ClientFailure, ModuleAggregate, ModuleGlobalState } from '../../core/strategies/types.js';
import type { Matrix } from '../../core/tensor.js';
import { resolveWeights } from '../../core/weights.js';
import { isRobustRule } from '../../core/robust.js';
import { chooseResidualForm, type ModuleLayout } from '../protocol/adapterTensors.js';
import { addDense, moduleLayout } from '../shared/baseWeights.js';
import type { AccumulatedModule, IdealUpdateAccumulator } from './accumulator.js';
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
  /** The round's accumulated uploads (used for the modules it holds when their residual travels dense). */
  readonly accumulator?: IdealUpdateAccumulator;
}

/** Runs the strategy over every module (as the core's `aggregateModules`); null when nothing is usable. */
function* strategyModules(
  strategy: AggregationStrategy, averaging: AggregationStrategy, accumulated: ReadonlySet<string>, round: number,
  globals: readonly ModuleGlobalState[], results: readonly ClientAdapterResult[], failures: readonly ClientFailure[],
): Generator<ModuleAggregate | null> {
  checkModuleSets(globals, results);
  for (const g of globals) {
    const s = accumulated.has(g.spec.name) ? averaging : strategy;
    yield s.aggregate(round, g, moduleResults(results, g.spec.name), failures);
  }
}

/** D = s·(S / Σc − B̄Ā), out × in, from a module's accumulated uploads. */
async function residualFromSums(acc: AccumulatedModule, global: LoraFactors, scale: number, backend: ProductBackend): Promise<Matrix<Float32Array>> {
  const f = scale / acc.total;
  const src = acc.sum.data;
  const d = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) d[i] = f * src[i];
  const out: Matrix<Float32Array> = { shape: [acc.sum.shape[0], acc.sum.shape[1]], data: d };
  await backend.addScaledProduct(out, 'linear', global.b, global.a, -scale);
  return out;
}

/** The normalised weights the strategy will use (to check the accumulated coefficients); empty when they cannot be resolved. */
function expectedWeights(plan: FederationPlan, updates: readonly AcceptedUpdate[]): number[] {
  try {
    return [...resolveWeights(plan.weighting, updates.map((u) => ({ numExamples: u.numExamples })))];
  } catch {
    return [];
  }
}

/** True when every entry is exactly zero. */
function allZero(m: Matrix<Float32Array>): boolean {
  return m.data.every((v) => v === 0);
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
  const specs = moduleSpecs(plan);
  const globals: ModuleGlobalState[] = specs.map((spec) => ({ spec, factors: global.get(spec.name) ?? null }));
  const results: ClientAdapterResult[] = updates.map((u, i) => ({ client: i, clientId: u.clientId, numExamples: u.numExamples, modules: u.adapter }));
  const averaging = createStrategy('fedit', { weighting: plan.weighting, deviationMetrics: false });
  // Pre-summed uploads give the mean only: a robust rule (strategy.aggregation) needs every upload itself.
  const sums = extras.accumulator !== undefined && !isRobustRule(strategy.aggregation) ? await extras.accumulator.finish(updates, expectedWeights(plan, updates)) : null;
  const active = updates.filter((u) => plan.weighting === 'uniform' || u.numExamples > 0).length;
  const accumulated = new Set<string>();
  for (const m of plan.layout) if (sums?.has(m.module) === true && chooseResidualForm(m.out, m.in, active * m.rank) === 'dense') accumulated.add(m.module);
  const stream = strategyModules(strategy, averaging, accumulated, round, globals, results, failures);
  const first = stream.next();
  if (first.done === true || first.value === null) return null;
  const newGlobal = new Map<string, LoraFactors>();
  const stepModules: StepModule[] = [];
  const modules: ModuleRoundRecord[] = [];
  const byName = new Map(plan.layout.map((m) => [m.module, m]));
  let weights: readonly number[] = [];
  const ctx = { plan, base, global, updates, backend, accumulated, sums, active };
  const take = async (one: ModuleAggregate | null): Promise<void> => {
    if (one === null) throw new Error(`${strategy.name}: a module had nothing usable although module '${globals[0].spec.name}' did`);
    const done = await finishModule(ctx, byName.get(one.global.spec.name)!, one);
    newGlobal.set(done.record.module, one.global.factors!);
    if (done.step !== null) stepModules.push(done.step);
    modules.push(done.record);
    weights = one.metrics.weights;
  };
  // One module's aggregate alive at a time: the first, then the rest as the stream yields them.
  await take(first.value);
  for (const one of stream) await take(one);
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
  readonly accumulated: ReadonlySet<string>;
  readonly sums: ReadonlyMap<string, AccumulatedModule> | null;
  readonly active: number;
}

/** Decides a module's base step (factored, dense from P·Q, or dense from the sums), folds it into the master, and records the module. */
async function finishModule(ctx: ModuleContext, m: ModuleLayout, agg: ModuleAggregate): Promise<{ step: StepModule | null; record: ModuleRoundRecord }> {
  const { backend } = ctx;
  const name = m.module;
  const factors = agg.global.factors!;
  const scale = agg.metrics.scale;
  let step: StepModule | null = null;
  let scaledResidual: Matrix<Float32Array> | undefined;
  let inner = 0;
  if (ctx.accumulated.has(name)) {
    inner = ctx.active * m.rank;
    scaledResidual = await residualFromSums(ctx.sums!.get(name)!, factors, scale, backend);
    if (ctx.plan.method === 'fedex' && !allZero(scaledResidual)) step = { module: name, form: 'dense', scale: 1, d: scaledResidual };
  } else if (agg.baseUpdate !== null) {
    const u = agg.baseUpdate;
    inner = u.p.shape[1];
    if (chooseResidualForm(m.out, m.in, inner) === 'factored') {
      step = { module: name, form: 'factored', scale: u.scale, p: u.p, q: u.q };
    } else {
      // Dense travels as D = s·P·Q (scale 1), and the master gets exactly D: the same bits as clients.
      scaledResidual = { shape: [m.out, m.in], data: new Float32Array(m.out * m.in) };
      await backend.addScaledProduct(scaledResidual, 'linear', u.p, u.q, u.scale);
      step = { module: name, form: 'dense', scale: 1, d: scaledResidual };
    }
  } else if (agg.denseResidual !== undefined) {
    // A robust rule: D = s·(rule_i(B_i A_i) − B̄Ā) has no factored form. FedEx folds it in (the same bits
    // travel to clients, scale 1); FedIT and FFA only report it.
    scaledResidual = agg.denseResidual.d;
    if (agg.denseResidual.foldedIntoBase) step = { module: name, form: 'dense', scale: 1, d: scaledResidual };
  }
  if (step !== null) await applyStep(ctx.base.get(name)!, m, step, backend);
  const clients = ctx.updates.map((x) => x.adapter.get(name)!);
  const record = await moduleRecord(ctx.plan, m, scale, clients, agg.metrics.weights, ctx.global.get(name), factors, step, inner, scaledResidual, backend);
  const truncation = agg.metrics.residualTruncation;
  return { step, record: truncation !== undefined ? { ...record, residualTruncation: truncation } : record };
}

/** Folds a step into the module's master weight, as clients will (dense D with scale 1, or the fused P·Q). */
async function applyStep(target: Matrix<Float32Array>, m: ModuleLayout, step: StepModule, backend: ProductBackend): Promise<void> {
  if (step.form === 'factored') await backend.addScaledProduct(target, moduleLayout(m), step.p, step.q, step.scale);
  else addDense(target, moduleLayout(m), step.d, step.scale);
}

/** A module's figures: deviation norms (when enabled), residual form, adapter drift. */
async function moduleRecord(
  plan: FederationPlan, m: ModuleLayout, scale: number, clients: LoraFactors[], weights: readonly number[],
  previous: LoraFactors | undefined, factors: LoraFactors, step: StepModule | null, inner: number, scaledResidual: Matrix<Float32Array> | undefined, backend: ProductBackend,
): Promise<ModuleRoundRecord> {
  const norms = plan.deviationMetrics
    ? await deviationNormsBounded({ clients, weights, abar: factors.a, bbar: factors.b, scale, scaledResidual }, backend)
    : { deviationNorm: NaN, relativeDeviation: NaN };
  const drift = previous !== undefined ? adapterDrift(previous, factors, clients) : undefined;
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
