/**
 * Whole-model rounds on top of the per-module strategies: cut adapter-level client results into
 * module results, and stream the modules through a strategy one at a time (`aggregateModules`, peak
 * memory ≈ one module's update) or collect them all (`aggregateModel`, for small models and tests).
 */
import { clientLabel } from '../lora.js';
import type { LoraFactors } from '../lora.js';
import type { FactoredUpdate } from '../residual.js';
import { summarizeDeviations } from '../deviation.js';
import type { DeviationSummary } from '../deviation.js';
import type { AggregationStrategy, ClientFailure, ClientModuleResult, DenseResidual, ModuleAggregate, ModuleAggregateMetrics, ModuleGlobalState } from './types.js';

/** One client's whole adapter for a round. */
export interface ClientAdapterResult {
  readonly client: number;
  readonly clientId?: string;
  readonly numExamples?: number;
  readonly weight?: number;
  /** Factors by module name. */
  readonly modules: ReadonlyMap<string, LoraFactors>;
}

/** The module `name`'s results out of whole-adapter results; throws naming the client that lacks it. */
export function moduleResults(results: readonly ClientAdapterResult[], name: string): ClientModuleResult[] {
  return results.map((r) => {
    const factors = r.modules.get(name);
    if (factors === undefined) throw new RangeError(`${clientLabel(r.client, r.clientId)} sent no factors for module '${name}'`);
    return { client: r.client, clientId: r.clientId, numExamples: r.numExamples, weight: r.weight, factors };
  });
}

/** Throws when a client sent a module the global adapter does not have, or lacks one it has. */
export function checkModuleSets(globals: readonly ModuleGlobalState[], results: readonly ClientAdapterResult[]): void {
  const known = new Set(globals.map((g) => g.spec.name));
  for (const r of results) {
    for (const name of r.modules.keys()) {
      if (!known.has(name)) throw new RangeError(`${clientLabel(r.client, r.clientId)} sent module '${name}', which the global adapter does not have`);
    }
    for (const name of known) {
      if (!r.modules.has(name)) throw new RangeError(`${clientLabel(r.client, r.clientId)} sent no factors for module '${name}'`);
    }
  }
}

/**
 * Streams a round through a strategy, one module per step, in the order of `globals`. Returns null
 * when the round has nothing usable (decided on the first module, as the strategy decides it).
 * Consume each yielded module (apply its base update, write it out) before pulling the next.
 */
export function aggregateModules(
  strategy: AggregationStrategy,
  round: number,
  globals: readonly ModuleGlobalState[],
  results: readonly ClientAdapterResult[],
  failures: readonly ClientFailure[],
): Iterable<ModuleAggregate> | null {
  if (results.length === 0 || globals.length === 0) return null;
  checkModuleSets(globals, results);
  const first = strategy.aggregate(round, globals[0], moduleResults(results, globals[0].spec.name), failures);
  if (first === null) return null;
  return (function* stream(): Generator<ModuleAggregate> {
    yield first;
    for (const g of globals.slice(1)) {
      const next = strategy.aggregate(round, g, moduleResults(results, g.spec.name), failures);
      if (next === null) throw new Error(`${strategy.name}: module '${g.spec.name}' had nothing usable although module '${globals[0].spec.name}' did`);
      yield next;
    }
  })();
}

/** A whole round's outcome, all modules at once. */
export interface ModelAggregate {
  readonly global: readonly ModuleGlobalState[];
  /** Base updates by module name (FedEx; modules whose residual vanished are absent). */
  readonly baseUpdates: ReadonlyMap<string, FactoredUpdate>;
  /** Dense base updates by module name (FedEx under a robust rule; modules whose D vanished are absent). */
  readonly denseBaseUpdates: ReadonlyMap<string, DenseResidual>;
  readonly metrics: readonly ModuleAggregateMetrics[];
  readonly summary: DeviationSummary;
}

/** Aggregates every module of a round and summarises the deviation by type and layer; null when nothing is usable. */
export function aggregateModel(
  strategy: AggregationStrategy,
  round: number,
  globals: readonly ModuleGlobalState[],
  results: readonly ClientAdapterResult[],
  failures: readonly ClientFailure[],
): ModelAggregate | null {
  const stream = aggregateModules(strategy, round, globals, results, failures);
  if (stream === null) return null;
  const global: ModuleGlobalState[] = [];
  const baseUpdates = new Map<string, FactoredUpdate>();
  const denseBaseUpdates = new Map<string, DenseResidual>();
  const metrics: ModuleAggregateMetrics[] = [];
  for (const m of stream) {
    global.push(m.global);
    if (m.baseUpdate !== null) baseUpdates.set(m.global.spec.name, m.baseUpdate);
    if (m.denseResidual?.foldedIntoBase === true) denseBaseUpdates.set(m.global.spec.name, m.denseResidual);
    metrics.push(m.metrics);
  }
  return { global, baseUpdates, denseBaseUpdates, metrics, summary: summarizeDeviations(metrics) };
}
