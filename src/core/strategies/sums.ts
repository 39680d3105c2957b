/**
 * The streaming accumulator of the mean-based strategies (FedEx-LoRA, FedIT): S = Σ c_i·B_i·A_i,
 * out × in, summed as uploads arrive, and at the close
 *
 *   D = s·(S / Σc − B̄Ā)      (= s·ΔR, with the B̄, Ā actually sent)
 *
 * which FedEx folds into the base as a dense change and FedIT reports as what it loses. The sum runs
 * in arrival order, so its float32 rounding (≈ 1e-7 of ‖Σ w_i B_i A_i‖, the size the exactness
 * checks measure against) may differ between runs; where the residual travels factored the
 * strategies' own `aggregate` is the deterministic path.
 *
 * FLoRA (`fresh`) folds the whole mean update D = s·S / Σc and starts the next round from a fresh
 * adapter. Clients of rank r_i below the global rank (core/clientRanks.ts) add their own B_i·A_i as
 * any other; at the close the truncation losses of their starts, s·B_g·diag(c)·A_g, join D.
 */
import type { LoraFactors, LoraModuleSpec } from '../lora.js';
import { weightedTruncation } from '../clientRanks.js';
import type { ProductBackend } from '../product.js';
import { isAllZero, type Matrix } from '../tensor.js';
import { averageFactors, moduleMetrics, prepareModuleRound } from './common.js';
import type { ModuleAccumulator, ModuleAggregate, StrategyName, StrategyOptions } from './types.js';

/**
 * An accumulator for `spec`: `fold` (FedEx) makes D the base update, otherwise (FedIT) D is only
 * reported as the aggregate's `deviation`. With `fresh` (FLoRA, which folds) D is the whole mean
 * update and the new global adapter is `fresh(round, spec)`.
 */
export function sumsAccumulator(
  name: StrategyName,
  spec: LoraModuleSpec,
  backend: ProductBackend,
  fold: boolean,
  options: StrategyOptions,
  fresh?: (round: number, spec: LoraModuleSpec) => LoraFactors,
): ModuleAccumulator {
  const sum: Matrix<Float32Array> = { shape: [spec.outFeatures, spec.inFeatures], data: new Float32Array(spec.outFeatures * spec.inFeatures) };
  let total = 0;
  return {
    async add(factors: LoraFactors, coefficient: number): Promise<void> {
      if (!(Number.isFinite(coefficient) && coefficient >= 0)) throw new RangeError(`${name}: module '${spec.name}': a client's coefficient must be finite and ≥ 0, got ${coefficient}`);
      total += coefficient;
      if (coefficient > 0) await backend.addScaledProduct(sum, 'linear', factors.b, factors.a, coefficient);
    },
    async finish(round, global, results, failures): Promise<ModuleAggregate | null> {
      const prepared = prepareModuleRound(name, global, results, failures, { ...options, deviationMetrics: false }, fold);
      if (prepared === null) return null;
      if (!(total > 0)) throw new RangeError(`${name}: module '${spec.name}': nothing was accumulated`);
      const averages = averageFactors(prepared);
      const f = prepared.scale / total;
      const d = new Float32Array(sum.data.length);
      for (let i = 0; i < d.length; i++) d[i] = f * sum.data[i];
      const residual: Matrix<Float32Array> = { shape: [spec.outFeatures, spec.inFeatures], data: d };
      if (fresh === undefined) await backend.addScaledProduct(residual, 'linear', averages.b, averages.a, -prepared.scale);
      const loss = prepared.heterogeneous ? weightedTruncation(global.factors, prepared.ranks, prepared.weights) : null;
      if (loss !== null) await backend.addScaledProduct(residual, 'linear', loss.p, loss.q, prepared.scale);
      const factors = fresh === undefined ? averages : fresh(round, spec);
      const baseUpdate = fold && !isAllZero(residual.data) ? { form: 'dense' as const, d: residual, scale: 1, layout: spec.layout } : null;
      return {
        global: { spec, factors },
        baseUpdate,
        ...(fold ? {} : { deviation: residual }),
        ...(fresh !== undefined || prepared.heterogeneous ? { plainAverage: averages } : {}),
        metrics: moduleMetrics(name, round, prepared, averages, failures.length, fold, baseUpdate),
      };
    },
  };
}
