// `fedex simulate` through runCli with captured output: the main job on a tiny GPT-2 with the real
// trainer (2 clients × 2 rounds × 2 steps, all four methods) with `--events -` (JSONL on stdout,
// human output on stderr), the model-free variant with an events file, and usage errors.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseEventLine } from '../../src/federation/events/events.js';
import { CLI_EVENT_TYPES } from '../helpers/eventTypes.js';
import type { SimulationReport } from '../../src/federation/simulation/report.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { suiteTinyGpt2 } from '../helpers/cliTinyGpt2.js';
import { cli } from '../helpers/cliRun.js';

describe('fedex simulate', { timeout: 90_000 }, () => {
  const tmp = suiteTempDir('cli-simulate');
  const model = suiteTinyGpt2(tmp);

  test('is the first command of fedex --help', async () => {
    const { code, stdout } = await cli('--help');
    assert.equal(code, 0);
    assert.match(stdout, /Commands:\n {2}simulate /);
  });

  test('the main job on a tiny model with the real trainer: JSONL events on stdout, tables on stderr, report.json', async () => {
    const out = join(tmp.path, 'real');
    const started = performance.now();
    const { code, stdout, stderr } = await cli('simulate', '--seeds', '1', '--model', model.path, '--data', 'task:arith?count=160', '--clients', '2', '--rounds', '2', '--local-steps', '2', '--batch-size', '4', '--seq-len', '48',
      '--eval-examples', '8', '--rank', '4', '--out', out, '--events', '-');
    const seconds = (performance.now() - started) / 1000;
    assert.equal(code, 0, stderr);
    assert.ok(seconds < 60, `took ${seconds.toFixed(1)} s`);
    const events = stdout.split('\n').filter((l) => l !== '').map((l) => parseEventLine(l)!);
    assert.ok(events.length > 20);
    const known = new Set<string>(CLI_EVENT_TYPES);
    for (const e of events) assert.ok(known.has(e.type), `documented type: ${e.type}`);
    assert.equal(events[0].type, 'simulation_started');
    assert.equal(events[events.length - 1].type, 'simulation_done');
    assert.match(stderr, /method +final eval loss +accuracy +exact match +mean rel\. deviation/);
    assert.match(stderr, /^fedex +\d/m);
    assert.match(stderr, /^centralized +\d/m);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as SimulationReport;
    assert.deepEqual(report.comparison.map((m) => m.method), ['fedex', 'fedit', 'ffa', 'centralized']);
    assert.equal(report.settings.workload, 'onnx');
    for (const m of report.methods) assert.equal(m.rounds.length, 3);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    assert.ok(html.includes('new Chart('), 'the chart script is there');
    assert.ok(html.length > 150_000, 'Chart.js is inlined');
  });

  test('model-free run with --events <file> and --methods subset', async () => {
    const out = join(tmp.path, 'synthetic');
    const eventsFile = join(tmp.path, 'events.jsonl');
    const { code, stdout } = await cli('simulate', '--seeds', '1', '--model', 'synthetic', '--methods', 'fedit,fedex', '--clients', '2', '--rounds', '1', '--local-steps', '1', '--out', out, '--events', eventsFile);
    assert.equal(code, 0);
    assert.match(stdout, /^fedit +1 /m, 'live round table on stdout');
    const lines = (await readFile(eventsFile, 'utf8')).trim().split('\n').map((l) => parseEventLine(l)!);
    assert.deepEqual(lines.filter((e) => e.type === 'method_started').map((e) => (e as { method?: string }).method), ['fedit', 'fedex']);
  });

  test('bad flags are usage errors (exit 2) naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['--clients', '0'], /--clients must be an integer/],
      [['--methods', 'fedex,fedavg'], /--methods must list some of fedex, fedit, ffa, flora, fedsb, centralized, got 'fedavg'/],
      [['--split', 'random'], /--split must be one of non-iid, dirichlet, iid/],
      [['--lr', 'fast'], /--lr must be a number/],
      [['--bogus'], /Unknown option '--bogus'/],
      [['extra'], /unexpected argument 'extra'/],
      [['--model', join(tmp.path, 'nope')], /--model '.*nope' is not a model folder/],
    ];
    for (const [argv, message] of cases) {
      const { code, stderr } = await cli('simulate', ...argv);
      assert.equal(code, 2, argv.join(' '));
      assert.match(stderr, message);
    }
  });
});
