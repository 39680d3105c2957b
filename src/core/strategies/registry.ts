/** The strategies by name, for the CLI and the coordinator's configuration. */
import { createFedEx } from './fedex.js';
import { createFedIt } from './fedit.js';
import { createFfa } from './ffa.js';
import { STRATEGY_NAMES } from './types.js';
import type { AggregationStrategy, FedExOptions, StrategyName } from './types.js';

/** True when `name` is a known strategy name. */
export function isStrategyName(name: string): name is StrategyName {
  return (STRATEGY_NAMES as readonly string[]).includes(name);
}

/** Creates a strategy by name; options that do not apply to it (residualForm for fedit/ffa) are ignored. */
export function createStrategy(name: string, options: FedExOptions = {}): AggregationStrategy {
  if (!isStrategyName(name)) throw new RangeError(`unknown strategy '${name}' (expected one of ${STRATEGY_NAMES.join(', ')})`);
  switch (name) {
    case 'fedex':
      return createFedEx(options);
    case 'fedit':
      return createFedIt(options);
    case 'ffa':
      return createFfa(options);
  }
}
