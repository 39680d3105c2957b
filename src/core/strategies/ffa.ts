/**
 * FFA-LoRA: A stays frozen at its shared seeded init and only B is trained and averaged. Since every
 * client holds the same A, Σ w_i B_i A = B̄A exactly: no residual, base unchanged. The strategy
 * refuses a round whose clients' A are not bit-identical (to each other and to the global A).
 */
import { firstDifference } from '../tensor.js';
import { clientLabel } from '../lora.js';
import { weightedAverage } from '../average.js';
import { moduleMetrics, prepareModuleRound } from './common.js';
import type { AggregationStrategy, StrategyOptions } from './types.js';

/** Creates the FFA-LoRA strategy. */
export function createFfa(options: StrategyOptions = {}): AggregationStrategy {
  return {
    name: 'ffa',
    exact: true,
    updatesBase: false,
    frozenA: true,
    aggregate(round, global, results, failures) {
      const prepared = prepareModuleRound('ffa', global, results, failures, options);
      if (prepared === null) return null;
      const { spec } = prepared;
      const shared = global.factors?.a ?? results[0].factors.a;
      if (shared.shape[0] !== spec.rank || shared.shape[1] !== spec.inFeatures) {
        throw new RangeError(`ffa: module '${spec.name}': the global lora_A has shape [${shared.shape.join(', ')}], expected [${spec.rank}, ${spec.inFeatures}]`);
      }
      const sharedName = global.factors === null ? clientLabel(results[0].client, results[0].clientId) : 'the global adapter';
      for (const r of results) {
        const at = firstDifference(r.factors.a.data, shared.data);
        if (at >= 0) {
          const cols = spec.inFeatures;
          throw new RangeError(
            `ffa: module '${spec.name}': ${clientLabel(r.client, r.clientId)}'s lora_A differs from ${sharedName}'s at [${Math.floor(at / cols)}, ${at % cols}] ` +
              `(${r.factors.a.data[at]} vs ${shared.data[at]}); FFA-LoRA needs lora_A frozen at its shared init (use fedex or fedit for trained A)`,
          );
        }
      }
      const factors = {
        a: { shape: shared.shape, data: Float32Array.from(shared.data) },
        b: weightedAverage(prepared.factors.map((f) => f.b), prepared.weights, `module '${spec.name}': average of lora_B`),
      };
      return {
        global: { spec, factors },
        baseUpdate: null,
        metrics: moduleMetrics('ffa', round, prepared, factors, failures.length, true, null),
      };
    },
  };
}
