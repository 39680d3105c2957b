/**
 * FedEx-LoRA, FedIT and FFA-LoRA under a robust rule (core/robust.ts: coordinate-wise median or
 * trimmed mean), behind the same strategy interface:
 *
 * - FedIT: Ā = rule_i(A_i), B̄ = rule_i(B_i); base unchanged.
 * - FFA: A frozen (checked as FFA-LoRA checks it), B̄ = rule_i(B_i); base unchanged.
 * - FedEx: Ā, B̄ as FedIT, and the dense base update D = s·(rule_i(B_i A_i) − B̄Ā), so that
 *   W0 + D + s·B̄Ā = rule_i(W0 + s·B_i A_i): exact with respect to the rule.
 *
 * The rules are unweighted (uniform weighting only) and need the clients' products, so a robust
 * strategy is never fed pre-summed uploads (`aggregation` tells the server loop).
 */
import { checkAggregationRule, robustCombine, robustResidual, ruleIsMean, ruleLabel, ruleProblem } from '../robust.js';
import type { AggregationRule } from '../robust.js';
import { denseBytes } from '../residual.js';
import { moduleDeviation, relativeDeviation } from '../deviation.js';
import type { LoraFactors } from '../lora.js';
import { moduleMetrics, prepareModuleRound } from './common.js';
import { createFfa } from './ffa.js';
import type { AggregationStrategy, FedExOptions, ModuleAggregate, ModuleAggregateMetrics, StrategyName } from './types.js';

/**
 * Creates `name` under the robust `rule`. Throws when the rule is `mean` (use the plain strategies),
 * when the weighting is not uniform (the rules are unweighted), or with a FedEx residualRank.
 */
export function createRobustStrategy(name: StrategyName, rule: AggregationRule, options: FedExOptions = {}): AggregationStrategy {
  const checked = checkAggregationRule(rule);
  const label = ruleLabel(checked);
  if (checked.name === 'mean') throw new RangeError(`${name}: createRobustStrategy needs median or trimmed-mean, got mean`);
  // FLoRA folds the whole mean update; a coordinate-wise rule over B_i·A_i would be FedEx under that rule.
  if (name === 'flora') throw new RangeError(`flora: the ${label} rule is not supported (FLoRA stacks the weighted mean of the updates); use fedex with ${label}`);
  // Fed-SB's exactness is that of the mean of R (B·rule(R_i)·A ≠ rule(B·R_i·A)); a robust R is not built.
  if (name === 'fedsb') throw new RangeError(`fedsb: the ${label} rule is not supported (Fed-SB averages R; a coordinate-wise rule over R_i would not be the rule of the client models); use fedex with ${label}`);
  const weighting = options.weighting ?? 'uniform';
  if (weighting !== 'uniform') {
    throw new RangeError(`${name}: the ${checked.name} rule is unweighted (every client counts once): it cannot be combined with '${weighting}' weighting; use uniform weighting`);
  }
  if (options.residualRank !== undefined) throw new RangeError(`${name}: residualRank applies to the mean rule only, not to ${label}`);
  // FFA-LoRA's own checks of the shared A (bit for bit, to each other and to the global A).
  const ffa = name === 'ffa' ? createFfa({ ...options, deviationMetrics: false }) : null;
  return {
    name,
    exact: name === 'fedex',
    updatesBase: name === 'fedex',
    ...(ffa !== null ? { frozenA: true } : {}),
    aggregation: checked,
    aggregate(round, global, results, failures) {
      const prepared = prepareModuleRound(name, global, results, failures, { ...options, weighting: 'uniform', deviationMetrics: false });
      if (prepared === null) return null;
      const { spec } = prepared;
      const k = results.length;
      const problem = ruleProblem(checked, k);
      if (problem !== null) throw new RangeError(`${name}: module '${spec.name}': ${problem}`);
      const what = (t: string): string => `${name}: module '${spec.name}': ${label} of ${t}`;
      let factors: LoraFactors;
      if (ffa !== null) {
        const shared = ffa.aggregate(round, global, results, failures);
        if (shared === null) return null;
        factors = { a: shared.global.factors!.a, b: robustCombine(prepared.factors.map((f) => f.b), checked, what('lora_B')) };
      } else {
        factors = { a: robustCombine(prepared.factors.map((f) => f.a), checked, what('lora_A')), b: robustCombine(prepared.factors.map((f) => f.b), checked, what('lora_B')) };
      }
      // FedEx needs D; FedIT and FFA form it only for the deviation metrics.
      const metricsOn = options.deviationMetrics ?? true;
      const fold = name === 'fedex';
      const residual = fold || metricsOn ? robustResidual(prepared.factors, factors, prepared.scale, checked) : null;
      const d = residual?.d ?? null;
      const folded = fold && d !== null && residual?.zero !== true;
      // FedEx is exact for the rule; FFA and FedIT only where the rule is the plain mean of these k (FFA) — never for FedIT.
      const exact = fold || (name === 'ffa' && ruleIsMean(checked, k));
      const base = moduleMetrics(name, round, prepared, factors, failures.length, exact, null);
      const norms = residual !== null
        ? { deviationNorm: residual.deviationNorm, idealUpdateNorm: residual.idealUpdateNorm, relativeDeviation: relativeDeviation(residual.deviationNorm, residual.idealUpdateNorm) }
        : { deviationNorm: NaN, idealUpdateNorm: NaN, relativeDeviation: NaN };
      const metrics: ModuleAggregateMetrics = {
        ...base,
        ...moduleDeviation(spec.name, norms),
        // rule_i(B_i A_i) is full rank in general; a plain mean of these k keeps FedEx's bound.
        residualRankBound: k <= 1 ? 0 : ruleIsMean(checked, k) ? base.residualRankBound : Math.min(spec.outFeatures, spec.inFeatures),
        baseUpdateInner: 0,
        baseUpdateFactoredBytes: 0,
        baseUpdateDenseBytes: folded ? denseBytes(spec.outFeatures, spec.inFeatures) : 0,
        aggregation: checked,
      };
      const out: ModuleAggregate = folded
        ? { global: { spec, factors }, baseUpdate: { form: 'dense', d: d!, scale: 1, layout: spec.layout }, metrics }
        : { global: { spec, factors }, baseUpdate: null, ...(d !== null && !fold ? { deviation: d } : {}), metrics };
      return out;
    },
  };
}
