/**
 * `--recompute auto|on|off` of `fedex train`, `fedex join` and `fedex simulate`: activation
 * recomputation per transformer block (src/trainer/memoryPlan.ts, docs/devices.md).
 */
import { RECOMPUTE_MODES, type RecomputeMode } from '../trainer/memoryPlan.js';
import { choiceFlag, type FlagSpecs, type ParsedArgs } from './args.js';

/** The flag (spread into a command's `FlagSpecs`). */
export const RECOMPUTE_FLAG: FlagSpecs = {
  recompute: {
    type: 'string',
    value: RECOMPUTE_MODES.join('|'),
    default: 'auto',
    help: 'activation recomputation (gradient checkpointing): the backward pass recomputes each transformer block from its input instead of keeping its activations, '
      + 'for about one more forward pass per step; auto: only when one example at --seq-len would not fit --memory-budget otherwise',
  },
};

/** `--recompute` as a setup field (absent: the trainer's default, auto). */
export function recomputeFlag(args: ParsedArgs, command: string): { recompute?: RecomputeMode } {
  return args.values.recompute === undefined ? {} : { recompute: choiceFlag(args, 'recompute', command, RECOMPUTE_MODES, 'auto') };
}
