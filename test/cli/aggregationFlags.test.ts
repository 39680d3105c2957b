// `--aggregation median|trimmed-mean` and `--trim` through the CLI (runCli, captured output):
// `fedex simulate` runs several rounds of every federated method under the median and reports the
// rule (terminal, report.json, report.html, round events); `fedex aggregate --aggregation median` on
// the adapters that simulation saved rebuilds its round-1 global adapter and base bit for bit and
// finds the result exact for the median; bad combinations are usage errors naming the flag.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseEventLine } from '../../src/federation/events/events.js';
import type { SimulationReport } from '../../src/federation/simulation/report.js';
import type { AggregateReport } from '../../src/federation/offline/aggregateFolders.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { cli } from '../helpers/cliRun.js';

describe('--aggregation on the command line', { timeout: 120_000 }, () => {
  const tmp = suiteTempDir('cli-aggregation');

  test('fedex simulate --aggregation median: 3 rounds of fedex, fedit and ffa, the rule in the output, report and events; fedex aggregate reproduces round 1', async () => {
    const out = join(tmp.path, 'median');
    const eventsFile = join(tmp.path, 'median.jsonl');
    const { code, stdout, stderr } = await cli('simulate', '--seeds', '1', '--model', 'synthetic', '--methods', 'fedex,fedit,ffa', '--clients', '3', '--rounds', '3', '--local-steps', '1', '--aggregation', 'median', '--save-adapters',
      '--out', out, '--events', eventsFile);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /methods fedex, fedit, ffa, aggregation median/);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as SimulationReport;
    assert.equal(report.settings.aggregation, 'median');
    assert.deepEqual(report.methods.map((m) => [m.method, m.rounds.length]), [['fedex', 4], ['fedit', 4], ['ffa', 4]]);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    assert.ok(html.includes('Aggregation: <strong>median</strong>'), 'report.html names the rule');
    assert.match(html, /<td>aggregation<\/td><td>median<\/td>/);
    const closed = (await readFile(eventsFile, 'utf8')).trim().split('\n').map((l) => parseEventLine(l)!).filter((e) => e.type === 'round_closed') as unknown as { method: string; aggregated: boolean; aggregation: string;
      modules: { residualForm: string | null }[] }[];
    assert.equal(closed.length, 9);
    for (const r of closed) {
      assert.ok(r.aggregated);
      assert.equal(r.aggregation, 'median');
      // FedEx folds the median's dense residual into every module's base; FedIT and FFA leave the base alone.
      assert.ok(r.modules.every((m) => m.residualForm === (r.method === 'fedex' ? 'dense' : null)), `${r.method}: ${JSON.stringify(r.modules)}`);
    }

    // The same round offline, from the adapters the simulation saved.
    const saved = join(out, 'adapters', 'fedex');
    const clients = ['client-1', 'client-2', 'client-3'].map((c) => join(saved, 'round-001', 'clients', c));
    const offline = join(tmp.path, 'offline-median');
    const agg = await cli('aggregate', '--method', 'fedex', '--aggregation', 'median', '--base', join(saved, 'round-000', 'base', 'model.safetensors'), '--adapters', ...clients, '--out', offline);
    assert.equal(agg.code, 0, agg.stderr);
    assert.match(agg.stdout, /fedex \(median\): 4 modules from 3 adapters .*Global model vs\. median of client models: max relative error .* \(exact to float32 round-off\)/);
    const aggReport = JSON.parse(await readFile(join(offline, 'report.json'), 'utf8')) as AggregateReport;
    assert.equal(aggReport.aggregation, 'median');
    assert.ok(aggReport.modules.every((m) => m.baseUpdated && m.exactness.withinTolerance && m.exactness.maxAbsUpdate > 0));
    assert.deepEqual(await readFile(join(offline, 'model.safetensors')), await readFile(join(saved, 'round-001', 'base', 'model.safetensors')), 'the same base after round 1, bit for bit');
    assert.deepEqual(await readFile(join(offline, 'adapter', 'adapter_model.safetensors')), await readFile(join(saved, 'round-001', 'global', 'adapter_model.safetensors')), 'the same global adapter');
    // The plain mean of the same adapters is another model.
    const mean = join(tmp.path, 'offline-mean');
    assert.equal((await cli('aggregate', '--method', 'fedex', '--base', join(saved, 'round-000', 'base', 'model.safetensors'), '--adapters', ...clients, '--out', mean)).code, 0);
    assert.notDeepEqual(await readFile(join(mean, 'model.safetensors')), await readFile(join(offline, 'model.safetensors')));
  });

  test('bad combinations are usage errors (exit 2) naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['simulate', '--model', 'synthetic', '--clients', '3', '--aggregation', 'trimmed-mean', '--trim', '0.2'],
        /--aggregation trimmed-mean --trim: trimmed-mean with trim 0\.2 drops ⌊0\.2·3⌋ = 0 of 3 clients at each end .*needs at least 5 clients, or a trim of at least 0\.334 for 3/],
      [['simulate', '--model', 'synthetic', '--trim', '0.2'], /--trim applies to --aggregation trimmed-mean only \(got --aggregation mean\)/],
      [['simulate', '--model', 'synthetic', '--aggregation', 'trimmed-mean', '--trim', '0.5'], /--trim: trimmed-mean: trim must be in \[0, 0\.5\)/],
      [['simulate', '--model', 'synthetic', '--aggregation', 'mode'], /--aggregation must be one of mean, median, trimmed-mean, got 'mode'/],
      [['simulate', '--model', 'synthetic', '--aggregation', 'median', '--residual-rank', '2'], /--residual-rank applies to the mean rule only, not to --aggregation median/],
      [['host', '--model', 'synthetic', '--aggregation', 'median', '--weighting', 'examples'], /--aggregation median is unweighted .*cannot be combined with --weighting examples/],
      [['aggregate', '--method', 'fedex', '--aggregation', 'median', '--weights', '1,2', '--base', 'b', '--adapters', 'a1', 'a2', '--out', 'o'], /cannot be combined with --weights/],
    ];
    for (const [argv, message] of cases) {
      const { code, stderr } = await cli(...argv);
      assert.equal(code, 2, argv.join(' '));
      assert.match(stderr, message, argv.join(' '));
    }
  });
});
