// `fedex aggregate` run in-process through runCli with captured stdout/stderr: help, usage errors
// (exit 2, naming the flag), multi-value --adapters, a successful run (table or --json) and a
// runtime error (exit 1).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { expandMultiValue } from '../../src/cli/commands/aggregate.js';
import type { AggregateReport } from '../../src/federation/offline/aggregateFolders.js';
import { GPT2_SPEC, makeFixture, SHARDS, shardCheckpoint } from '../helpers/offlineFixtures.js';
import type { Fixture } from '../helpers/offlineFixtures.js';
import { entries, suiteTempDir } from '../helpers/tempDir.js';
import { cli as fedexCli } from '../helpers/cliRun.js';

/** `fedex aggregate <argv>` in process, its output collected. */
const cli = (...argv: string[]): ReturnType<typeof fedexCli> => fedexCli('aggregate', ...argv);

const tmp = suiteTempDir('cli-aggregate');
let fx: Fixture;
let n = 0;
/** A fresh output path under `<tmp>/<group>`. */
const outPath = (group = 'outs'): string => join(tmp.path, group, `out-${n++}`);

before(async () => {
  fx = await makeFixture(join(tmp.path, 'fx'), GPT2_SPEC, ['c_attn', 'c_proj']);
});

describe('fedex aggregate --help', () => {
  test('exits 0 and lists every flag with its placeholder', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await cli(flag);
      assert.equal(r.code, 0);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, /^Usage: fedex aggregate /);
      for (const f of ['--method <fedex|fedit|ffa|flora>', '--base <path>', '--adapters <dir…>', '--weights <w1,w2,…>', '--out <dir>', '--dtype <same|float32>', '--check-rows <n>', '--device <', '--threads <n>', '--force', '--json',
        '-h, --help']) {
        assert.ok(r.stdout.includes(f), `help lists ${f}`);
      }
    }
  });
});

describe('fedex aggregate usage errors exit 2 and name the flag', () => {
  const cases: readonly { what: string; argv: () => string[]; mentions: readonly string[] }[] = [
    { what: 'unknown method', argv: () => ['--method', 'nope', '--base', fx.base, '--adapters', ...fx.adapters, '--out', outPath('usage')], mentions: ['--method', "'nope'", 'fedex, fedit, ffa, flora'] },
    { what: 'missing --out', argv: () => ['--base', fx.base, '--adapters', ...fx.adapters], mentions: ['--out', 'required'] },
    { what: 'missing --base', argv: () => ['--adapters', ...fx.adapters, '--out', outPath('usage')], mentions: ['--base', 'required'] },
    { what: 'a weight that is not a number', argv: () => ['--base', fx.base, '--adapters', ...fx.adapters, '--weights', '1,x', '--out', outPath('usage')], mentions: ['--weights', "'x'"] },
    { what: 'no adapters', argv: () => ['--base', fx.base, '--adapters', '--out', outPath('usage')], mentions: ['--adapters'] },
    { what: 'unknown flag', argv: () => ['--base', fx.base, '--bogus', '--adapters', ...fx.adapters], mentions: ['--bogus'] },
    { what: 'bad --dtype', argv: () => ['--base', fx.base, '--adapters', ...fx.adapters, '--dtype', 'half', '--out', outPath('usage')], mentions: ['--dtype', "'half'"] },
    { what: 'fractional --check-rows', argv: () => ['--base', fx.base, '--adapters', ...fx.adapters, '--check-rows=1.5', '--out', outPath('usage')], mentions: ['--check-rows', 'integer', "'1.5'"] },
    { what: '--threads 0', argv: () => ['--base', fx.base, '--adapters', ...fx.adapters, '--threads', '0', '--out', outPath('usage')], mentions: ['--threads', '≥ 1'] },
  ];
  for (const c of cases) {
    test(c.what, async () => {
      const r = await cli(...c.argv());
      assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
      assert.equal(r.stdout, '');
      for (const m of c.mentions) assert.ok(r.stderr.includes(m), `stderr names ${m}: ${r.stderr}`);
      assert.deepEqual(await entries(join(tmp.path, 'usage')).catch(() => []), [], 'nothing written');
    });
  }
});

describe('--adapters takes several values', () => {
  test('expandMultiValue turns each following non-flag argument into its own --adapters', () => {
    assert.deepEqual(expandMultiValue(['--adapters', 'a', 'b', 'c', '--out', 'o'], '--adapters'), ['--adapters', 'a', '--adapters', 'b', '--adapters', 'c', '--out', 'o']);
    assert.deepEqual(expandMultiValue(['--out', 'o', '--adapters', 'a', 'b'], '--adapters'), ['--out', 'o', '--adapters', 'a', '--adapters', 'b']);
    assert.deepEqual(expandMultiValue(['--adapters', '--json'], '--adapters'), ['--json'], 'a bare --adapters is dropped (then reported as missing)');
    assert.deepEqual(expandMultiValue(['--adapters=a', '--adapters', 'b'], '--adapters'), ['--adapters=a', '--adapters', 'b']);
  });
});

describe('fedex aggregate runs', () => {
  test('prints the summary table and exits 0 (adapters listed last)', async () => {
    const out = outPath();
    const r = await cli('--base', fx.base, '--out', out, '--adapters', ...fx.adapters);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /module type/);
    assert.match(r.stdout, /max exactness error/);
    for (const type of ['qkv', 'o', 'mlp']) assert.match(r.stdout, new RegExp(`^\\s*\\S*\\s*${type}\\b`, 'm'), `a row for ${type}`);
    assert.match(r.stdout, /fedex: 6 modules from 3 adapters/);
    assert.match(r.stdout, /exact to float32 round-off/);
    assert.deepEqual(await entries(out), ['adapter', 'config.json', 'model.safetensors', 'report.json', 'residual.safetensors']);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as AggregateReport;
    assert.deepEqual(report.adapters, fx.adapters);
  });

  test('a sharded GPT-2 base (Conv1D): the same shards and an index come out, exact', async () => {
    // prepare
    const sharded = join(tmp.path, 'fx-sharded');
    const weightMap = await shardCheckpoint(fx, sharded);
    const out = outPath();
    // act
    const r = await cli('--base', sharded, '--out', out, '--adapters', ...fx.adapters);
    // assert
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /fedex: 6 modules from 3 adapters/);
    assert.match(r.stdout, /exact to float32 round-off/);
    assert.deepEqual(await entries(out), ['adapter', 'config.json', 'model.safetensors.index.json', ...SHARDS, 'report.json', 'residual.safetensors'].sort());
    const index = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    assert.deepEqual(index.weight_map, weightMap);
  });

  test('--json prints the report as parseable JSON; --weights 3,1,2 and --dtype float32 reach the aggregation', async () => {
    const out = outPath();
    const r = await cli('--adapters', ...fx.adapters, '--base', fx.base, '--weights', '3,1,2', '--dtype', 'float32', '--check-rows', '0', '--json', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as AggregateReport;
    assert.equal(report.method, 'fedex');
    assert.equal(report.modules.length, 6);
    assert.equal(report.outputDtype, 'float32');
    assert.ok(report.summary.allWithinTolerance);
    [0.5, 1 / 6, 1 / 3].forEach((w, i) => assert.ok(Math.abs(report.weights[i] - w) < 1e-12, `weight ${i}`));
    assert.deepEqual(report.adapters, fx.adapters);
  });

  test('fedit says it is inexact and writes no model', async () => {
    const out = outPath();
    const r = await cli('--method', 'fedit', '--base', fx.base, '--adapters', ...fx.adapters, '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /inexact/);
    assert.equal(await stat(join(out, 'model.safetensors')).catch(() => null), null);
  });

  test('an existing output exits 1 with the error code; --force replaces it', async () => {
    const out = outPath();
    assert.equal((await cli('--base', fx.base, '--adapters', ...fx.adapters, '--out', out)).code, 0);
    const again = await cli('--base', fx.base, '--adapters', ...fx.adapters, '--out', out);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /\[OUTPUT_EXISTS\]/);
    assert.ok(again.stderr.includes(out));
    const forced = await cli('--base', fx.base, '--adapters', ...fx.adapters, '--out', out, '--force');
    assert.equal(forced.code, 0, forced.stderr);
  });

  test('bad input found while reading exits 1 naming the file', async () => {
    const missing = join(tmp.path, 'no-model');
    const r = await cli('--base', missing, '--adapters', ...fx.adapters, '--out', outPath());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[BASE_NOT_FOUND\]/);
    assert.ok(r.stderr.includes(missing));
  });
});
