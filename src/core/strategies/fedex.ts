/**
 * FedEx-LoRA: average A and B like FedAvg, and fold what that average loses into the base weight,
 * W0 ← W0 + s·ΔR with ΔR = Σ w_i B_i A_i − B̄Ā = P·Q kept factored. After the round
 * W0' + s·B̄Ā = Σ w_i (W0 + s·B_i A_i): exact aggregation.
 */
import { factorResidual, isZeroResidual } from '../residual.js';
import { averageFactors, moduleMetrics, prepareModuleRound } from './common.js';
import type { AggregationStrategy, FedExOptions } from './types.js';

/** Creates the FedEx-LoRA strategy. */
export function createFedEx(options: FedExOptions = {}): AggregationStrategy {
  return {
    name: 'fedex',
    exact: true,
    updatesBase: true,
    aggregate(round, global, results, failures) {
      const prepared = prepareModuleRound('fedex', global, results, failures, options);
      if (prepared === null) return null;
      const factors = averageFactors(prepared);
      const residual = factorResidual(prepared.factors, prepared.weights, factors.a, options.residualForm ?? 'stacked');
      // A single contributor or identical A's leave nothing to fold in: W0 stays bit-identical.
      const baseUpdate = isZeroResidual(residual)
        ? null
        : { p: residual.p, q: residual.q, scale: prepared.scale, layout: prepared.spec.layout };
      return {
        global: { spec: prepared.spec, factors },
        baseUpdate,
        metrics: moduleMetrics('fedex', round, prepared, factors, failures.length, true, baseUpdate),
      };
    },
  };
}
