/**
 * `--aggregation mean|median|trimmed-mean` and `--trim β`, shared by `fedex simulate`, `host` and
 * `aggregate`: the flags and their reading into a core `AggregationRule` (core/robust.ts).
 */
import { aggregationRule, AGGREGATION_RULE_NAMES, DEFAULT_TRIM, isRobustRule, ruleProblem, type AggregationRule } from '../core/robust.js';
import { choiceFlag, numberFlag, type FlagSpecs, type ParsedArgs } from './args.js';
import { usageError } from './errors.js';

/** The two flags, for a command's `FlagSpecs`. */
export const AGGREGATION_FLAGS: FlagSpecs = {
  aggregation: {
    type: 'string',
    value: AGGREGATION_RULE_NAMES.join('|'),
    default: 'mean',
    help: 'how client adapters are combined: the mean, or the coordinate-wise median / trimmed mean (robust to outlier updates; unweighted; FedEx then folds a dense residual into the base)',
  },
  trim: { type: 'string', value: 'β', help: `trimmed-mean: share of clients dropped at each end of every coordinate, in [0, 0.5) (default ${DEFAULT_TRIM})` },
};

/**
 * The rule the flags ask for; undefined for the mean (the strategies' default). Usage errors name
 * the flag: an unknown rule, a trim outside [0, 0.5), --trim without trimmed-mean, a robust rule
 * with the flag that weights clients (`weightedBy`, e.g. `--weighting examples`), and (with
 * `clients`, the size of every round) a trim that drops nobody.
 */
export function aggregationFlags(args: ParsedArgs, command: string, o: { weightedBy?: string; clients?: number } = {}): AggregationRule | undefined {
  const name = choiceFlag(args, 'aggregation', command, AGGREGATION_RULE_NAMES, 'mean');
  const trimGiven = args.values.trim !== undefined;
  if (trimGiven && name !== 'trimmed-mean') throw usageError(`fedex ${command}: --trim applies to --aggregation trimmed-mean only (got --aggregation ${name}).`);
  const trim = trimGiven ? numberFlag(args, 'trim', command, DEFAULT_TRIM) : undefined;
  let rule: AggregationRule;
  try {
    rule = aggregationRule(name, trim);
  } catch (err) {
    throw usageError(`fedex ${command}: --trim: ${(err as Error).message}.`);
  }
  if (!isRobustRule(rule)) return undefined;
  if (o.weightedBy !== undefined) {
    throw usageError(`fedex ${command}: --aggregation ${name} is unweighted (every client counts once); it cannot be combined with ${o.weightedBy}.`);
  }
  const problem = o.clients === undefined ? null : ruleProblem(rule, o.clients);
  if (problem !== null) throw usageError(`fedex ${command}: --aggregation ${name} --trim: ${problem}.`);
  return rule;
}
