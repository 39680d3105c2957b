/**
 * Argument parsing for the subcommands, on node:util parseArgs, with typed accessors whose errors
 * name the flag and the value that is wrong.
 */
import { parseArgs } from 'node:util';
import { usageError } from './errors.js';

export interface FlagSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** One line for --help; the value placeholder is taken from `value`. */
  help: string;
  value?: string;
  default?: string | boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/** Parses argv for one subcommand; unknown flags are usage errors naming the flag. */
export function parseFlags(command: string, argv: readonly string[], specs: FlagSpecs): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, s] of Object.entries(specs)) {
    options[name] = { type: s.type, ...(s.multiple ? { multiple: true } : {}), ...(s.short ? { short: s.short } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (err) {
    const reason = (err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, '').replace(/\.\s*$/, '');
    throw usageError(`fedex ${command}: ${reason}. See 'fedex ${command} --help'.`);
  }
}

/** A string flag or its default; throws when required and absent. */
export function stringFlag(args: ParsedArgs, name: string, command: string, fallback?: string): string {
  const v = args.values[name];
  if (typeof v === 'string') return v;
  if (fallback !== undefined) return fallback;
  throw usageError(`fedex ${command}: --${name} is required. See 'fedex ${command} --help'.`);
}

/** An optional string flag. */
export function optionalString(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A boolean flag (false when absent). */
export function booleanFlag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/** A numeric flag within [min, max]; `integer` rejects fractions. */
export function numberFlag(
  args: ParsedArgs,
  name: string,
  command: string,
  fallback: number,
  bounds: { min?: number; max?: number; integer?: boolean } = {},
): number {
  const raw = args.values[name];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  const { min = -Infinity, max = Infinity, integer = false } = bounds;
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    const range = `${integer ? 'an integer' : 'a number'}${min > -Infinity ? ` ≥ ${min}` : ''}${max < Infinity ? ` ≤ ${max}` : ''}`;
    throw usageError(`fedex ${command}: --${name} must be ${range}, got '${String(raw)}'.`);
  }
  return v;
}

/** A flag restricted to a fixed set of values. */
export function choiceFlag<T extends string>(args: ParsedArgs, name: string, command: string, choices: readonly T[], fallback: T): T {
  const raw = args.values[name];
  if (raw === undefined) return fallback;
  if (typeof raw === 'string' && (choices as readonly string[]).includes(raw)) return raw as T;
  throw usageError(`fedex ${command}: --${name} must be one of ${choices.join(', ')}, got '${String(raw)}'.`);
}

/** A comma-separated list of numbers (e.g. --weights 3,1,2). */
export function numberListFlag(args: ParsedArgs, name: string, command: string): number[] | undefined {
  const raw = optionalString(args, name);
  if (raw === undefined) return undefined;
  const parts = raw.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  const bad = parts.findIndex((p, i) => p === '' || !Number.isFinite(nums[i]));
  if (bad >= 0) throw usageError(`fedex ${command}: --${name} must be comma-separated numbers, '${parts[bad]}' is not a number.`);
  return nums;
}

/** Renders the --help text of a subcommand. */
export function renderHelp(usage: string, summary: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const flag = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.type === 'string' ? ` <${s.value ?? 'value'}>` : ''}`;
    const def = s.default !== undefined ? ` (default: ${String(s.default)})` : '';
    return [flag, `${s.help}${def}`] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return [`Usage: ${usage}`, '', summary, '', 'Options:', ...rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`)].join('\n');
}
