/** The strategies by name, for the CLI and the coordinator's configuration. */
import { createFedEx } from './fedex.js';
import { createFedIt } from './fedit.js';
import { createFfa } from './ffa.js';
import { createFlora } from './flora.js';
import { createFedSb } from './fedsb.js';
import { createRobustStrategy } from './robust.js';
import { isRobustRule } from '../robust.js';
import { STRATEGY_NAMES } from './types.js';
import type { AggregationStrategy, FedExOptions, StrategyName } from './types.js';

/** True when `name` is a known strategy name. */
export function isStrategyName(name: string): name is StrategyName {
  return (STRATEGY_NAMES as readonly string[]).includes(name);
}

/**
 * Creates a strategy by name; options that do not apply to it (residualForm for fedit/ffa) are ignored.
 * A robust `aggregation` rule (median, trimmed-mean) gives the strategy under that rule (strategies/robust.ts).
 */
export function createStrategy(name: string, options: FedExOptions = {}): AggregationStrategy {
  if (!isStrategyName(name)) throw new RangeError(`unknown strategy '${name}' (expected one of ${STRATEGY_NAMES.join(', ')})`);
  if (options.aggregation !== undefined && isRobustRule(options.aggregation)) return createRobustStrategy(name, options.aggregation, options);
  switch (name) {
    case 'fedex':
      return createFedEx(options);
    case 'fedit':
      return createFedIt(options);
    case 'ffa':
      return createFfa(options);
    case 'flora':
      return createFlora(options);
    case 'fedsb':
      return createFedSb(options);
  }
}
