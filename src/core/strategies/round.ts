/**
 * Whole-model rounds on top of the per-module strategies: cut adapter-level client results into
 * module results, and stream the modules through a strategy one at a time (`aggregateModules`, peak
 * memory ≈ one module's update: what the coordinator runs).
 */
import { clientLabel } from '../lora.js';
import type { LoraFactors } from '../lora.js';
import type { AggregationStrategy, ClientFailure, ClientModuleResult, ModuleAccumulator, ModuleAggregate, ModuleGlobalState } from './types.js';

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
 * Streams a round through a strategy, one module per step, in the order of `globals`: each module
 * from its accumulator's sums when `accumulated` has one for it (the uploads were summed as they
 * arrived), else from the strategy's `aggregate`. Resolves null when the round has nothing usable
 * (decided on the first module, as the strategy decides it). Consume each yielded module (apply its
 * base update, write it out) before pulling the next: one module's update is alive at a time.
 */
export async function aggregateModules(
  strategy: AggregationStrategy,
  round: number,
  globals: readonly ModuleGlobalState[],
  results: readonly ClientAdapterResult[],
  failures: readonly ClientFailure[],
  accumulated: ReadonlyMap<string, ModuleAccumulator> = new Map(),
): Promise<AsyncIterable<ModuleAggregate> | null> {
  if (results.length === 0 || globals.length === 0) return null;
  checkModuleSets(globals, results);
  const one = (g: ModuleGlobalState): Promise<ModuleAggregate | null> | ModuleAggregate | null => {
    const acc = accumulated.get(g.spec.name);
    const moduleResultsOf = moduleResults(results, g.spec.name);
    return acc !== undefined ? acc.finish(round, g, moduleResultsOf, failures) : strategy.aggregate(round, g, moduleResultsOf, failures);
  };
  const first = await one(globals[0]);
  if (first === null) return null;
  return (async function* stream(): AsyncGenerator<ModuleAggregate> {
    yield first;
    for (const g of globals.slice(1)) {
      const next = await one(g);
      if (next === null) throw new Error(`${strategy.name}: module '${g.spec.name}' had nothing usable although module '${globals[0].spec.name}' did`);
      yield next;
    }
  })();
}
