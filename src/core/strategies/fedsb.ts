/**
 * Fed-SB (LoRA-SB, Ponkshe et al. 2025; docs/math.md §1.5): every client holds the same frozen A and
 * B (the global adapter's, from a shared seeded initialisation) and trains only the r × r matrix R
 * between them. The rule averages R: R̄ = Σ w_i R_i, and since B and A are shared,
 *
 *   W0 + s·B·R̄·A = Σ w_i (W0 + s·B·R_i·A)
 *
 * exactly: no residual, base unchanged. An upload is r² values per module. The strategy refuses a
 * client whose A or B differs from the global adapter's (as FFA-LoRA refuses a changed A), and one
 * without R. No streaming accumulator: the uploads are r × r, so holding them costs less than any sum.
 */
import { clientLabel, type LoraFactors } from '../lora.js';
import { effectiveFactors, validateSbFactors } from '../loraSb.js';
import { firstDifference, type Matrix } from '../tensor.js';
import { weightedAverage } from '../average.js';
import { moduleMetrics, prepareModuleRound } from './common.js';
import type { AggregationStrategy, StrategyOptions } from './types.js';

function copy(m: Matrix<Float32Array>): Matrix<Float32Array> {
  return { shape: [m.shape[0], m.shape[1]], data: Float32Array.from(m.data) };
}

/** Throws naming the client, module, tensor and first differing entry when `mine` is not bit-identical to `shared`. */
function checkFrozen(what: 'lora_A' | 'lora_B', mine: Matrix, shared: Matrix, module: string, who: string, sharedName: string): void {
  const at = firstDifference(mine.data, shared.data);
  if (at < 0) return;
  const cols = shared.shape[1];
  throw new RangeError(
    `fedsb: module '${module}': ${who}'s ${what} differs from ${sharedName}'s at [${Math.floor(at / cols)}, ${at % cols}] ` +
      `(${mine.data[at]} vs ${shared.data[at]}); Fed-SB keeps A and B frozen at their shared init and trains only R`,
  );
}

/** Creates the Fed-SB strategy. */
export function createFedSb(options: StrategyOptions = {}): AggregationStrategy {
  return {
    name: 'fedsb',
    exact: true,
    updatesBase: false,
    aggregate(round, global, results, failures) {
      const prepared = prepareModuleRound('fedsb', global, results, failures, options);
      if (prepared === null) return null;
      const { spec } = prepared;
      for (const r of results) validateSbFactors(spec, r.factors, r.client, r.clientId);
      const shared: LoraFactors = global.factors ?? results[0].factors;
      if (global.factors !== null && global.factors.r === undefined) throw new RangeError(`fedsb: module '${spec.name}': the global adapter has no lora_R (it is not a Fed-SB adapter)`);
      const sharedName = global.factors === null ? clientLabel(results[0].client, results[0].clientId) : 'the global adapter';
      for (const r of results) {
        const who = clientLabel(r.client, r.clientId);
        checkFrozen('lora_A', r.factors.a, shared.a, spec.name, who, sharedName);
        checkFrozen('lora_B', r.factors.b, shared.b, spec.name, who, sharedName);
      }
      const rbar = weightedAverage(prepared.factors.map((f) => f.r!), prepared.weights, `module '${spec.name}': average of lora_R`);
      const factors: LoraFactors = { a: copy(shared.a), b: copy(shared.b), r: rbar };
      // The deviation of plain averaging on the standard factors (A, B·R_i): zero up to round-off, reported as for FFA.
      const effective = { ...prepared, factors: prepared.factors.map(effectiveFactors) };
      return {
        global: { spec, factors },
        baseUpdate: null,
        metrics: moduleMetrics('fedsb', round, effective, effectiveFactors(factors), failures.length, true, null),
      };
    },
  };
}
