// `fedex simulate --seeds` and `--sweep` as real `fedex` processes on a tiny GPT-2 with the real
// trainer: the report sections exist in the terminal, report.json and report.html, every run has its
// own complete report, and the summary is recomputed here from report.json's per-run entries (and
// those from each run's own report.json). Usage errors of the new flags, in process.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { ComparisonReport, RunEntry } from '../../src/federation/simulation/comparisonReport.js';
import type { SimulationReport } from '../../src/federation/simulation/report.js';
import { cli } from '../helpers/cliRun.js';
import { spawnFedex } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { suiteTinyGpt2 } from '../helpers/cliTinyGpt2.js';

/** Mean and sample sd recomputed independently (two-pass, float64), nulls left out. */
function reference(values: readonly (number | null)[]): { n: number; mean: number | null; sd: number | null } {
  const v = values.filter((x): x is number => x !== null);
  if (v.length === 0) return { n: 0, mean: null, sd: null };
  let sum = 0;
  for (const x of v) sum += x;
  const mean = sum / v.length;
  let ss = 0;
  for (const x of v) ss += (x - mean) * (x - mean);
  return { n: v.length, mean, sd: v.length > 1 ? Math.sqrt(ss / (v.length - 1)) : null };
}

function close(actual: number | null, expected: number | null, what: string): void {
  if (expected === null) return assert.equal(actual, null, what);
  assert.ok(actual !== null && Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

/** Recomputes every figure of report.summary from report.runs and checks it, and each run against its own report.json. */
async function checkSummary(out: string, report: ComparisonReport): Promise<void> {
  for (const r of report.runs) {
    const own = JSON.parse(await readFile(join(out, r.label, 'report.json'), 'utf8')) as SimulationReport;
    assert.deepEqual(r.comparison.map((m) => [m.method, m.evalLoss, m.exactMatch, m.meanRelativeDeviation, m.bytesSent]), own.comparison.map((m) => [m.method, m.evalLoss, m.exactMatch, m.meanRelativeDeviation, m.bytesSent]),
      `${r.label}: figures from its own run`);
  }
  const values = report.settings.sweep?.values ?? [null];
  assert.deepEqual(report.summary.map((p) => p.sweepValue), values);
  for (const point of report.summary) {
    const runs: RunEntry[] = report.runs.filter((r) => r.sweepValue === point.sweepValue);
    assert.deepEqual(point.seeds, runs.map((r) => r.seed));
    const fig = (r: RunEntry, method: string, key: 'evalLoss' | 'exactMatch' | 'meanRelativeDeviation' | 'bytesSent'): number | null => r.comparison.find((m) => m.method === method)?.[key] ?? null;
    for (const m of point.methods) {
      for (const key of ['evalLoss', 'exactMatch', 'meanRelativeDeviation', 'bytesSent'] as const) {
        const want = reference(runs.map((r) => fig(r, m.method, key)));
        assert.equal(m[key].n, want.n, `${m.method} ${key} n`);
        close(m[key].mean, want.mean, `${m.method} ${key} mean`);
        close(m[key].sd, want.sd, `${m.method} ${key} sd`);
      }
    }
    const gap = reference(runs.map((r) => fig(r, 'fedex', 'evalLoss')! - fig(r, 'fedit', 'evalLoss')!));
    close(point.gap!.evalLoss.mean, gap.mean, 'gap mean');
    close(point.gap!.evalLoss.sd, gap.sd, 'gap sd');
    const sds = ['fedex', 'fedit'].map((m) => reference(runs.map((r) => fig(r, m, 'evalLoss'))).sd);
    close(point.gap!.evalLoss.spread, sds.includes(null) ? null : Math.max(...(sds as number[])), 'spread');
  }
}

const SMALL = ['--data', 'task:arith?count=160', '--clients', '2', '--rounds', '1', '--batch-size', '4', '--seq-len', '48', '--eval-examples', '8', '--rank', '4', '--methods', 'fedex,fedit'];

describe('fedex simulate --seeds / --sweep', { timeout: 240_000 }, () => {
  const tmp = suiteTempDir('cli-simulate-seeds');
  const model = suiteTinyGpt2(tmp);

  test('--seeds 2 with --split dirichlet: one run per seed, mean ± sd table and gap, recomputed from report.json', async () => {
    const out = join(tmp.path, 'seeds');

    const { code, stdout, stderr } = await spawnFedex(['simulate', '--model', model.path, ...SMALL, '--local-steps', '2', '--seeds', '2', '--seed', '7', '--split', 'dirichlet', '--dirichlet-alpha', '0.5', '--out', out]).done;

    assert.equal(code, 0, stderr);
    assert.match(stdout, /── run 1 of 2: seed 7 → .*seed-7\n/);
    assert.match(stdout, /── run 2 of 2: seed 8 → .*seed-8\n/);
    const sizes = [...stdout.matchAll(/--split dirichlet \(α = 0\.5, seed (\d+)\): clients 1…2 hold (\d+), (\d+) training records/g)];
    assert.deepEqual(sizes.map((m) => m[1]), ['7', '8']);
    for (const m of sizes) assert.equal(Number(m[2]) + Number(m[3]), 160, 'the shards partition the 160 training records');
    assert.match(stdout, /mean ± sd over seeds 7, 8 \(2 clients × 2 local steps\)/);
    assert.match(stdout, /^fedex +\d\.\d+ ± \d/m);
    assert.match(stdout, /FedEx − FedIT, paired by seed \(n = 2\):\n {2}eval loss: .* \((larger than|within) the seeds' spread /);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as ComparisonReport;
    assert.equal(report.format, 'fedex-simulation-comparison');
    assert.deepEqual(report.settings.seeds, [7, 8]);
    assert.equal(report.settings.split, 'dirichlet α=0.5');
    assert.deepEqual(report.runs.map((r) => r.label), ['seed-7', 'seed-8']);
    assert.notEqual(report.runs[0].comparison[0].evalLoss, report.runs[1].comparison[0].evalLoss, 'the seed changes the run');
    for (const r of report.runs) for (const m of ['fedex', 'fedit']) assert.ok(existsSync(join(out, r.label, 'runs', m)), `${r.label}: its own ${m} coordinator run`);
    await checkSummary(out, report);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    assert.match(html, /<h2>Seeds: mean ± sd<\/h2>/);
    assert.match(html, /<a href="seed-8\/report\.html">seed-8<\/a>/);
    // fedex export of the whole folder names the runs to export instead.
    const exported = await cli('export', out, '--out', join(tmp.path, 'seeds-export'));
    assert.notEqual(exported.code, 0);
    assert.match(exported.stderr, /holds 2 simulations \(fedex simulate --seeds\/--sweep\), each a simulate folder of its own: export one of them, e\.g\. .*seed-7 \(runs: seed-7, seed-8\)/);
  });

  test('--sweep local-steps=1,2: one point per value, the sweep table and charts, recomputed from report.json', async () => {
    const out = join(tmp.path, 'sweep');

    const { code, stdout, stderr } = await spawnFedex(['simulate', '--model', model.path, ...SMALL, '--seeds', '1', '--sweep', 'local-steps=1,2', '--out', out]).done;

    assert.equal(code, 0, stderr);
    assert.match(stdout, /local-steps = 1: mean ± sd over seeds 0 \(2 clients × 1 local steps\)/);
    assert.match(stdout, /local-steps = 2: mean ± sd over seeds 0 \(2 clients × 2 local steps\)/);
    assert.match(stdout, /Sweep over local-steps \(1 seed each\): deviation of plain averaging and the FedEx − FedIT gap\nlocal-steps +FedIT rel\. deviation/);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as ComparisonReport;
    assert.deepEqual(report.settings.sweep, { axis: 'local-steps', values: [1, 2] });
    assert.deepEqual(report.runs.map((r) => [r.label, r.localSteps]), [['local-steps-1/seed-0', 1], ['local-steps-2/seed-0', 2]]);
    const own = JSON.parse(await readFile(join(out, 'local-steps-2', 'seed-0', 'report.json'), 'utf8')) as SimulationReport;
    assert.equal(own.settings.localSteps, 2, 'the swept value reached the run');
    await checkSummary(out, report);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    assert.match(html, /<h2>Sweep: local-steps<\/h2>/);
    assert.ok(html.includes('chart-sweep-dev') && html.includes('new Chart('), 'sweep charts');
  });

  test('bad --seeds, --sweep, --split dirichlet and --dirichlet-alpha are usage errors naming the flag', async () => {
    const plain = join(tmp.path, 'plain.jsonl');
    await writeFile(plain, '{"text":"one"}\n{"text":"two"}\n');
    const cases: [string[], RegExp][] = [
      [['--seeds', '0'], /--seeds must be an integer ≥ 1/],
      [['--sweep', 'rounds=1,2'], /--sweep must be AXIS=v1,v2,… with AXIS one of local-steps, clients \(one axis per run\), got 'rounds=1,2'/],
      [['--sweep', 'local-steps'], /--sweep must be AXIS=v1,v2,…/],
      [['--sweep', 'local-steps=5,0'], /--sweep local-steps takes integers from 1 to 1000000, got '0'/],
      [['--sweep', 'clients=2,x'], /--sweep clients takes integers from 1 to 64, got 'x'/],
      [['--sweep', 'clients=2,2'], /--sweep clients lists a value twice/],
      [['--sweep', 'clients=2,4', '--clients', '3'], /--sweep clients=… sets --clients for each run; drop --clients/],
      [['--split', 'random'], /--split must be one of non-iid, dirichlet, iid/],
      [['--split', 'dirichlet', '--dirichlet-alpha', '0'], /--dirichlet-alpha must be a number > 0, got '0'/],
      [['--split', 'dirichlet', '--dirichlet-alpha', 'small'], /--dirichlet-alpha must be a number > 0, got 'small'/],
      [['--dirichlet-alpha', '0.1'], /--dirichlet-alpha applies to --split dirichlet only \(got --split non-iid\)/],
      [['--split', 'dirichlet', '--data', plain], /--split dirichlet: .*record 1 has neither/],
    ];
    for (const [argv, message] of cases) {
      const { code, stderr } = await cli('simulate', ...argv);
      assert.equal(code, 2, `${argv.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
    }
  });
});
