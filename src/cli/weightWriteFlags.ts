/**
 * What `fedex aggregate` and `fedex export` share to write base weights through the stored-update
 * kernel (src/runtime/kernels/storedUpdate.ts) and report on them: the flags `--dtype`,
 * `--check-rows`, `--device`, `--threads`, `--force` and `--json`, their reading, and the report
 * printed as JSON or as the command's summary.
 */
import { DEVICES, type Device } from '../runtime/session.js';
import { booleanFlag, choiceFlag, numberFlag, type FlagSpecs, type ParsedArgs } from './args.js';
import type { CliIO } from './command.js';

/** A command's `--check-rows`: its default and its help line (what a row is checked against, what 0 means). */
export interface CheckRowsFlag {
  readonly fallback: number;
  readonly help: string;
}

/** The flags, for a command's `FlagSpecs`; `deviceRuns` is what runs on `--device`. */
export function weightWriteFlags(checkRows: CheckRowsFlag, deviceRuns: string): FlagSpecs {
  return {
    dtype: { type: 'string', value: 'same|float32', help: 'dtype of the written base weights', default: 'same' },
    'check-rows': { type: 'string', value: 'n', help: checkRows.help, default: String(checkRows.fallback) },
    device: { type: 'string', value: DEVICES.join('|'), help: `onnxruntime device for ${deviceRuns}`, default: 'cpu' },
    threads: { type: 'string', value: 'n', help: 'onnxruntime intra-op threads (default: all cores)' },
    force: { type: 'boolean', help: 'replace an existing output folder' },
    json: { type: 'boolean', help: 'print the report as JSON instead of the summary table' },
  };
}

/** What the flags ask for. */
export interface WeightWrite {
  readonly dtype: 'same' | 'float32';
  readonly checkRows: number;
  readonly force: boolean;
  /** The kernel's onnxruntime options: `--device`, and `--threads` (undefined: all cores). */
  readonly kernel: { readonly device: Device; readonly intraOpThreads: number | undefined };
}

/** Reads the flags of {@link weightWriteFlags}; usage errors name the flag. */
export function weightWrite(args: ParsedArgs, command: string, checkRows: CheckRowsFlag): WeightWrite {
  return {
    dtype: choiceFlag(args, 'dtype', command, ['same', 'float32'] as const, 'same'),
    checkRows: numberFlag(args, 'check-rows', command, checkRows.fallback, { min: 0, integer: true }),
    force: booleanFlag(args, 'force'),
    kernel: {
      device: choiceFlag(args, 'device', command, DEVICES, 'cpu'),
      intraOpThreads: args.values.threads === undefined ? undefined : numberFlag(args, 'threads', command, 0, { min: 1, max: 256, integer: true }),
    },
  };
}

/** Prints `report` as JSON with `--json`, else as `printSummary` does. */
export function printReport<R>(args: ParsedArgs, io: CliIO, report: R, printSummary: (report: R, io: CliIO) => void): void {
  if (booleanFlag(args, 'json')) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else printSummary(report, io);
}
