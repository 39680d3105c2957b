import type { ParsedArgs } from './args.js';

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
