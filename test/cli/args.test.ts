// Flag parsing of the subcommands: every accessor returns the typed value or throws a usage error
// (CliError, exit code 2) naming the command, the flag and the bad value.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { booleanFlag, choiceFlag, numberFlag, numberListFlag, optionalString, parseFlags, renderHelp, stringFlag } from '../../src/cli/args.js';
import type { FlagSpecs, ParsedArgs } from '../../src/cli/args.js';
import { CliError } from '../../src/cli/errors.js';

const SPECS: FlagSpecs = {
  name: { type: 'string', value: 'text', help: 'a name' },
  n: { type: 'string', value: 'n', help: 'a count', default: '64' },
  x: { type: 'string', help: 'a number' },
  mode: { type: 'string', value: 'a|b', help: 'a mode', default: 'a' },
  list: { type: 'string', multiple: true, value: 'dir…', help: 'several' },
  force: { type: 'boolean', help: 'overwrite' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

const parse = (...argv: string[]): ParsedArgs => parseFlags('tool', argv, SPECS);

/** Asserts `fn` throws a usage error (exit 2) whose message contains every `part`. */
function usage(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CliError, `CliError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    assert.ok(err.message.startsWith('fedex tool: '), err.message);
    for (const p of parts) assert.ok(err.message.includes(p), `'${err.message}' names ${p}`);
    assert.ok(!err.message.includes('..'), `no doubled period: ${err.message}`);
    return true;
  });
}

describe('parseFlags', () => {
  test('collects strings, booleans, short flags, repeated flags and positionals', () => {
    const a = parse('--name', 'x', '--force', '-h', '--list', 'p', '--list=q', 'rest');
    assert.equal(a.values.name, 'x');
    assert.equal(a.values.force, true);
    assert.equal(a.values.help, true);
    assert.deepEqual(a.values.list, ['p', 'q']);
    assert.deepEqual(a.positionals, ['rest']);
  });

  test('an unknown flag or a missing value is a usage error naming the flag and pointing to --help', () => {
    usage(() => parse('--bogus'), "'--bogus'", "See 'fedex tool --help'");
    usage(() => parse('--name'), '--name', "See 'fedex tool --help'");
    usage(() => parse('--force=yes'), '--force');
    // Node's own message ends with a period here; it must not be doubled before "See …".
    usage(() => parse('--n', '-1'), '--n', '--n=-XYZ', "See 'fedex tool --help'");
  });
});

describe('stringFlag, optionalString, booleanFlag', () => {
  test('values, fallbacks and the required error', () => {
    const a = parse('--name', 'x');
    assert.equal(stringFlag(a, 'name', 'tool'), 'x');
    assert.equal(stringFlag(a, 'mode', 'tool', 'a'), 'a');
    usage(() => stringFlag(a, 'mode', 'tool'), '--mode is required');
    assert.equal(optionalString(a, 'name'), 'x');
    assert.equal(optionalString(a, 'mode'), undefined);
    assert.equal(booleanFlag(a, 'force'), false);
    assert.equal(booleanFlag(parse('--force'), 'force'), true);
  });
});

describe('numberFlag', () => {
  const bounds = { min: 1, max: 10, integer: true };
  test('absent gives the fallback; valid values parse', () => {
    assert.equal(numberFlag(parse(), 'n', 'tool', 64, bounds), 64);
    assert.equal(numberFlag(parse('--n', '7'), 'n', 'tool', 64, bounds), 7);
    assert.equal(numberFlag(parse('--n', '1'), 'n', 'tool', 64, bounds), 1, 'min is inclusive');
    assert.equal(numberFlag(parse('--n', '10'), 'n', 'tool', 64, bounds), 10, 'max is inclusive');
    assert.equal(numberFlag(parse('--x', '0.25'), 'x', 'tool', 0), 0.25);
    assert.equal(numberFlag(parse('--x=-3.5'), 'x', 'tool', 0), -3.5);
  });

  test('out of bounds, fractional, empty and non-numeric values name the flag, the range and the value', () => {
    usage(() => numberFlag(parse('--n', '0'), 'n', 'tool', 64, bounds), '--n', 'an integer ≥ 1 ≤ 10', "got '0'");
    usage(() => numberFlag(parse('--n', '11'), 'n', 'tool', 64, bounds), '--n', '≤ 10', "got '11'");
    usage(() => numberFlag(parse('--n', '2.5'), 'n', 'tool', 64, bounds), '--n', 'an integer', "got '2.5'");
    usage(() => numberFlag(parse('--n', 'abc'), 'n', 'tool', 64, bounds), '--n', "got 'abc'");
    usage(() => numberFlag(parse('--n='), 'n', 'tool', 64, bounds), '--n', "got ''");
    usage(() => numberFlag(parse('--n', ' '), 'n', 'tool', 64, bounds), '--n');
    usage(() => numberFlag(parse('--x', 'Infinity'), 'x', 'tool', 0), '--x', 'a number', "got 'Infinity'");
    usage(() => numberFlag(parse('--x', 'NaN'), 'x', 'tool', 0), '--x', "got 'NaN'");
    usage(() => numberFlag(parse('--x', '0.5'), 'x', 'tool', 0, { min: 1 }), 'a number ≥ 1');
  });
});

describe('choiceFlag', () => {
  test('returns a listed value or the fallback; anything else lists the choices', () => {
    const choices = ['a', 'b'] as const;
    assert.equal(choiceFlag(parse('--mode', 'b'), 'mode', 'tool', choices, 'a'), 'b');
    assert.equal(choiceFlag(parse(), 'mode', 'tool', choices, 'a'), 'a');
    usage(() => choiceFlag(parse('--mode', 'c'), 'mode', 'tool', choices, 'a'), '--mode', 'one of a, b', "got 'c'");
    usage(() => choiceFlag(parse('--mode', 'A'), 'mode', 'tool', choices, 'a'), "got 'A'");
  });
});

describe('numberListFlag', () => {
  test('parses comma-separated numbers, trimming spaces; absent is undefined', () => {
    assert.deepEqual(numberListFlag(parse('--x', '3,1,2'), 'x', 'tool'), [3, 1, 2]);
    assert.deepEqual(numberListFlag(parse('--x', ' 0.5 , 2 '), 'x', 'tool'), [0.5, 2]);
    assert.deepEqual(numberListFlag(parse('--x', '4'), 'x', 'tool'), [4]);
    assert.deepEqual(numberListFlag(parse('--x=-1,2'), 'x', 'tool'), [-1, 2], 'sign checks belong to the caller');
    assert.equal(numberListFlag(parse(), 'x', 'tool'), undefined);
  });

  test('an entry that is not a number is named', () => {
    usage(() => numberListFlag(parse('--x', '1,x'), 'x', 'tool'), '--x', "'x' is not a number");
    usage(() => numberListFlag(parse('--x', '1,,2'), 'x', 'tool'), '--x', "'' is not a number");
    usage(() => numberListFlag(parse('--x', '1,Infinity'), 'x', 'tool'), "'Infinity'");
    usage(() => numberListFlag(parse('--x', '1;2'), 'x', 'tool'), "'1;2'");
  });
});

describe('renderHelp', () => {
  test('usage, summary and one aligned row per flag with placeholder, short form and default', () => {
    const text = renderHelp('fedex tool [options]', 'Does a thing.', SPECS);
    const lines = text.split('\n');
    assert.deepEqual(lines.slice(0, 5), ['Usage: fedex tool [options]', '', 'Does a thing.', '', 'Options:']);
    const rows = lines.slice(5);
    assert.equal(rows.length, Object.keys(SPECS).length);
    const row = (flag: string): string => rows.find((r) => r.includes(flag))!;
    assert.ok(row('--name').includes('--name <text>'));
    assert.ok(row('--x ').includes('--x <value>'), 'a string flag without `value` gets <value>');
    assert.ok(row('--n ').endsWith('a count (default: 64)'));
    assert.ok(row('--list').includes('--list <dir…>'));
    assert.match(row('--force'), /^ {2} {4}--force {2,}overwrite$/, 'a boolean has no placeholder');
    assert.match(row('--help'), /^ {2}-h, --help {2,}show this help$/);
    const starts = Object.values(SPECS).map((s) => rows.find((r) => r.includes(s.help))!.indexOf(s.help));
    assert.equal(new Set(starts).size, 1, `help texts start in one column (${starts.join(', ')})`);
  });
});
