/**
 * One entry point for datasets: `task:NAME` (a built-in synthetic task) or a path to a JSONL file.
 */
import { loadJsonl } from './jsonl.js';
import type { Dataset } from './records.js';
import { generateTask, isTaskSpec } from './tasks.js';
import type { TaskOptions } from './tasks.js';

/** Options of {@link loadDataset}. */
export interface LoadDatasetOptions extends TaskOptions {
  /** Class names for classification files (see JsonlOptions.labelNames). */
  readonly labelNames?: readonly string[];
}

/**
 * Loads `task:NAME` (seed, count, split and evalShare apply) or a JSONL file (count reads at most
 * that many records; split/evalShare do not apply to a file: pass a separate eval file or use
 * splitTrainEval).
 */
export async function loadDataset(spec: string, options: LoadDatasetOptions = {}): Promise<Dataset> {
  if (spec.length === 0) throw new Error('loadDataset: empty dataset spec; give task:NAME or a .jsonl path');
  if (isTaskSpec(spec)) {
    if (options.labelNames !== undefined) throw new Error(`loadDataset: ${spec} has its own labels; labelNames applies to files`);
    return generateTask(spec, options);
  }
  if (options.split !== undefined || options.evalShare !== undefined) {
    throw new Error(`loadDataset: split/evalShare apply to task:… specs, not to the file ${spec}; use splitTrainEval or a separate eval file`);
  }
  return loadJsonl(spec, { labelNames: options.labelNames, limit: options.count });
}
