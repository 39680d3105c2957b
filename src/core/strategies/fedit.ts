/**
 * FedIT: plain FedAvg of A and B, base weight unchanged. Inexact: it loses s·ΔR, which it still
 * reports (the metrics' deviation is exactly what W0 + s·B̄Ā misses of Σ w_i (W0 + s·B_i A_i)).
 */
import { averageFactors, moduleMetrics, prepareModuleRound } from './common.js';
import { sumsAccumulator } from './sums.js';
import type { AggregationStrategy, StrategyOptions } from './types.js';

/** Creates the FedIT (FedAvg of LoRA factors) strategy. */
export function createFedIt(options: StrategyOptions = {}): AggregationStrategy {
  return {
    name: 'fedit',
    exact: false,
    updatesBase: false,
    aggregate(round, global, results, failures) {
      const prepared = prepareModuleRound('fedit', global, results, failures, options);
      if (prepared === null) return null;
      const factors = averageFactors(prepared);
      return {
        global: { spec: prepared.spec, factors },
        baseUpdate: null,
        metrics: moduleMetrics('fedit', round, prepared, factors, failures.length, false, null),
      };
    },
    accumulator: (spec, backend) => sumsAccumulator('fedit', spec, backend, false, options),
  };
}
