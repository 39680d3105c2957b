/**
 * FLoRA (stacking): the clients' adapters are stacked into one update of rank Σ r_i,
 * Σ w_i B_i A_i = P·Q with P = [w_1 B_1 | … | w_k B_k] (out × Σ r_i) and Q = [A_1; …; A_k], which is
 * folded into the base whole (layout-aware, W0 ← W0 + s·P·Q), and every round starts from a fresh
 * adapter: A from a seeded Kaiming-uniform init (PEFT's), B = 0. After the round
 * W0' + s·B_g·A_g = W0' = Σ w_i (W0 + s·B_i A_i): exact, for any client ranks (docs/math.md §1.3).
 *
 * Clients may train at ranks below the global rank; they then start from the first r_i rows of the
 * fresh A (and B = 0), which drops nothing. Only a non-zero starting B_g (an initial adapter given to
 * the coordinator) makes a truncation loss, folded in as FedEx folds it (core/clientRanks.ts).
 */
import { concatFactored, weightedTruncation } from '../clientRanks.js';
import type { LoraFactors, LoraModuleSpec } from '../lora.js';
import { createRng, kaimingUniform } from '../random.js';
import type { Matrix } from '../tensor.js';
import { averageFactors, moduleMetrics, prepareModuleRound } from './common.js';
import { sumsAccumulator } from './sums.js';
import type { AggregationStrategy, StrategyOptions } from './types.js';

/** FNV-1a of a string, 32 bits. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The fresh adapter FLoRA starts round `round + 1` from, for module `spec`: A Kaiming-uniform
 * (a = √5, PEFT's init) from a generator seeded by (seed, round, module name), B = 0. Anyone with the
 * seed can reproduce it; the coordinator sends it as the global adapter anyway.
 */
export function freshAdapter(seed: number, round: number, spec: Pick<LoraModuleSpec, 'name' | 'rank' | 'inFeatures' | 'outFeatures'>): LoraFactors {
  const rng = createRng(fnv1a(`flora:${seed}:${round}:${spec.name}`));
  const b: Matrix<Float32Array> = { shape: [spec.outFeatures, spec.rank], data: new Float32Array(spec.outFeatures * spec.rank) };
  return { a: kaimingUniform(spec.rank, spec.inFeatures, rng), b };
}

/** Creates the FLoRA strategy. */
export function createFlora(options: StrategyOptions = {}): AggregationStrategy {
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`flora: seed must be an integer in 0..4294967295, got ${seed}`);
  const fresh = (round: number, spec: LoraModuleSpec): LoraFactors => freshAdapter(seed, round, spec);
  return {
    name: 'flora',
    exact: true,
    updatesBase: true,
    heterogeneousRanks: true,
    aggregate(round, global, results, failures) {
      const prepared = prepareModuleRound('flora', global, results, failures, options, true);
      if (prepared === null) return null;
      const { spec, scale } = prepared;
      const stacked = concatFactored(prepared.factors.flatMap((f, i) => (prepared.weights[i] > 0 ? [{ p: f.b, q: f.a, coefficient: prepared.weights[i] }] : [])));
      const loss = prepared.heterogeneous ? weightedTruncation(global.factors, prepared.ranks, prepared.weights) : null;
      const update = loss === null ? stacked! : concatFactored([stacked!, loss])!;
      // Every B_i = 0 (no training happened): nothing to fold, W0 stays bit-identical.
      const zero = update.p.data.every((v) => v === 0) || update.q.data.every((v) => v === 0);
      const baseUpdate = zero ? null : { form: 'factored' as const, p: update.p, q: update.q, scale, layout: spec.layout };
      const averages = averageFactors(prepared);
      return {
        global: { spec, factors: fresh(round, spec) },
        baseUpdate,
        plainAverage: averages,
        metrics: moduleMetrics('flora', round, prepared, averages, failures.length, true, baseUpdate),
      };
    },
    accumulator: (spec, backend) => sumsAccumulator('flora', spec, backend, true, options, fresh),
  };
}
