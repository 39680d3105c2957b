import { booleanFlag, parseFlags, renderHelp, type FlagSpec, type FlagSpecs, type ParsedArgs } from './args.js';
import { usageError } from './errors.js';

/** `-h, --help`, which every subcommand answers: added after the flags of its spec. */
const HELP_FLAG: FlagSpec = { type: 'boolean', short: 'h', help: 'show this help' };

/** The shape of one `fedex` subcommand. */
export interface CliCommand {
  name: string;
  /** One line for `fedex --help`. */
  summary: string;
  /** Parses its arguments exactly as `run` does (the extension's generated arguments are tested with it). */
  readonly parse?: (argv: readonly string[]) => ParsedArgs;
  /** Runs with the arguments after the subcommand name; resolves to the exit code. */
  run(argv: readonly string[], io: CliIO): Promise<number>;
}

/** Where a command writes; injected so tests can capture output. */
export interface CliIO {
  stdout: { write(chunk: string): boolean; isTTY?: boolean; columns?: number };
  stderr: { write(chunk: string): boolean; isTTY?: boolean; columns?: number };
  /** Operator input (`host --manual-rounds`); read only by commands that need it. */
  stdin?: NodeJS.ReadableStream;
}

/** One subcommand declared once: its flags, help and positional arguments, and what it does. */
export interface CommandSpec {
  readonly name: string;
  /** One line for `fedex --help`. */
  readonly summary: string;
  /** The usage line(s) and the paragraph `fedex <name> --help` shows above the flags. */
  readonly usage: string;
  readonly help: string;
  /** Its own flags; `-h, --help` is added to them. */
  readonly flags: FlagSpecs;
  /**
   * Positional arguments accepted (default 0): more are a usage error naming the first extra one,
   * with `hint` (what goes where instead) when given.
   */
  readonly positionals?: { readonly max: number; readonly hint?: string };
  /** Rewrites the arguments before parsing (e.g. a flag that takes several values). */
  readonly preprocess?: (argv: readonly string[]) => string[];
  /** Runs with the parsed arguments (after `--help` and the positional check); resolves to the exit code. */
  run(args: ParsedArgs, io: CliIO): Promise<number>;
}

/**
 * A `CliCommand` from its spec: the preamble every subcommand shares — parse with its own flag
 * table and `--help`, answer `--help`, refuse extra positional arguments — written once.
 */
export function defineCommand(spec: CommandSpec): CliCommand {
  const flags: FlagSpecs = { ...spec.flags, help: HELP_FLAG };
  const parse = (argv: readonly string[]): ParsedArgs => parseFlags(spec.name, spec.preprocess?.(argv) ?? argv, flags);
  return {
    name: spec.name,
    summary: spec.summary,
    parse,
    async run(argv, io) {
      const args = parse(argv);
      if (booleanFlag(args, 'help')) {
        io.stdout.write(`${renderHelp(spec.usage, spec.help, flags)}\n`);
        return 0;
      }
      const max = spec.positionals?.max ?? 0;
      if (args.positionals.length > max) {
        const hint = spec.positionals?.hint !== undefined ? ` (${spec.positionals.hint})` : '';
        throw usageError(`fedex ${spec.name}: unexpected argument '${args.positionals[max]}'${hint}. See 'fedex ${spec.name} --help'.`);
      }
      return spec.run(args, io);
    },
  };
}
