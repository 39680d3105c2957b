/**
 * FedEx-LoRA: average A and B like FedAvg, and fold what that average loses into the base weight,
 * W0 ← W0 + s·ΔR with ΔR = Σ w_i B_i A_i − B̄Ā = P·Q kept factored. After the round
 * W0' + s·B̄Ā = Σ w_i (W0 + s·B_i A_i): exact aggregation.
 *
 * Clients may train at ranks r_i below the global rank r_g (core/clientRanks.ts, docs/math.md §1.4):
 * their factors are zero-padded to r_g for the averages, ΔR keeps each client's r_i components, and
 * what each client's truncated start left in its own base, Σ w_i L_i = B_g·diag(c)·A_g, is folded in
 * with ΔR, so W0' + s·B̄Ā = Σ w_i (W0_i + s·B_i A_i) with W0_i = W0 + s·L_i.
 */
import { refactorLowRank } from '../lowRank.js';
import { concatFactored, residualAtRanks, weightedTruncation } from '../clientRanks.js';
import { factorResidual, isZeroResidual } from '../residual.js';
import type { FactoredResidual } from '../residual.js';
import { averageFactors, moduleMetrics, prepareModuleRound } from './common.js';
import { sumsAccumulator } from './sums.js';
import type { AggregationStrategy, FedExOptions } from './types.js';

/** Creates the FedEx-LoRA strategy. */
export function createFedEx(options: FedExOptions = {}): AggregationStrategy {
  const k = options.residualRank;
  if (k !== undefined && (!Number.isInteger(k) || k < 1)) throw new RangeError(`fedex: residualRank must be an integer ≥ 1, got ${k}`);
  return {
    name: 'fedex',
    exact: k === undefined,
    updatesBase: true,
    heterogeneousRanks: true,
    aggregate(round, global, results, failures) {
      const prepared = prepareModuleRound('fedex', global, results, failures, options, true);
      if (prepared === null) return null;
      const factors = averageFactors(prepared);
      const exactResidual = prepared.heterogeneous
        ? withTruncation(residualAtRanks(prepared.factors, prepared.weights, factors.a), weightedTruncation(global.factors, prepared.ranks, prepared.weights))
        : factorResidual(prepared.factors, prepared.weights, factors.a, options.residualForm ?? 'stacked');
      const { residual, truncation } = k === undefined || isZeroResidual(exactResidual) ? { residual: exactResidual, truncation: undefined } : truncated(exactResidual, k);
      // A single contributor or identical A's leave nothing to fold in: W0 stays bit-identical.
      const baseUpdate = isZeroResidual(residual)
        ? null
        : { form: 'factored' as const, p: residual.p, q: residual.q, scale: prepared.scale, layout: prepared.spec.layout };
      const metrics = moduleMetrics('fedex', round, prepared, factors, failures.length, truncation === undefined || truncation.relativeError === 0, baseUpdate);
      return {
        global: { spec: prepared.spec, factors },
        baseUpdate,
        ...(prepared.heterogeneous ? { plainAverage: factors } : {}),
        metrics: truncation === undefined ? metrics : { ...metrics, residualTruncation: truncation },
      };
    },
    // The residual of the pre-summed uploads is exact: a truncated one needs the factors themselves.
    ...(k === undefined ? { accumulator: (spec, backend) => sumsAccumulator('fedex', spec, backend, true, options) } : {}),
  };
}

/** ΔR with the clients' truncation losses appended (P side by side, Q stacked); ΔR itself when nothing was truncated. */
function withTruncation(residual: ReturnType<typeof residualAtRanks>, loss: ReturnType<typeof weightedTruncation>): FactoredResidual {
  const joined = loss === null ? residual : concatFactored([residual, loss])!;
  return { p: joined.p, q: joined.q, contributors: residual.contributors, form: 'stacked' };
}

/**
 * The best rank-k approximation of ΔR = P·Q (float32 factors, inner k), with the rank kept and the
 * share of ‖ΔR‖_F dropped; the residual itself when its inner size is already at most k.
 */
function truncated(residual: FactoredResidual, k: number): { residual: Pick<FactoredResidual, 'p' | 'q'>; truncation?: { rank: number; exactRank: number; relativeError: number } } {
  const [out, inner] = residual.p.shape;
  if (inner <= k) return { residual };
  const r = refactorLowRank([{ kind: 'factored', p: residual.p, q: residual.q, scale: 1 }], out, residual.q.shape[1], { maxRank: k });
  return {
    residual: { p: { shape: r.b.shape, data: Float32Array.from(r.b.data) }, q: { shape: r.a.shape, data: Float32Array.from(r.a.data) } },
    truncation: { rank: r.rank, exactRank: r.exactRank, relativeError: r.relativeError },
  };
}
