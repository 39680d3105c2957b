// Client-level DP through the CLI, as people run it: `fedex simulate` (coordinator and clients over
// real WebSockets in this process) and `fedex host` + two `fedex join` as separate processes, with
// --dp-clip/--dp-noise on for three rounds. The ε each round reports — in the events, the host's
// terminal line, simulate's terminal, report.json, report.html and the dashboard's model — grows
// every round and is the accountant's for that many releases. Usage errors name the flag.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gaussianPrivacySpent } from '../../src/core/privacy/accountant.js';
import { epsilonText } from '../../src/cli/privacyFlags.js';
import { parseEventLine, type CliEventOf } from '../../src/federation/events/events.js';
import type { SimulationReport } from '../../src/federation/simulation/report.js';
import { initialFederation, reduceFederation } from '../../src/extension/state/federationState.js';
import { privacySummary, roundRows } from '../../webview/series.js';
import { cli } from '../helpers/cliRun.js';
import { suiteFedex, waitForHostUrl } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';

const spent = (noiseMultiplier: number, rounds: number, delta = 1e-5): number => gaussianPrivacySpent({ samplingRate: 1, noiseMultiplier, rounds, delta }).epsilon;

async function events(path: string): Promise<CliEventOf<'round_closed'>[]> {
  return (await readFile(path, 'utf8')).trim().split('\n').map((l) => parseEventLine(l)!).filter((e) => e.type === 'round_closed') as CliEventOf<'round_closed'>[];
}

describe('client-level DP from the command line', { timeout: 120_000 }, () => {
  const start = suiteFedex();
  const tmp = suiteTempDir('cli-dp');

  test('fedex simulate --dp-clip --dp-noise: ε per round in the events, the terminal, report.json, report.html and the dashboard', async () => {
    const out = join(tmp.path, 'sim');
    const eventsFile = join(tmp.path, 'sim.jsonl');
    const sigma = 1.1;
    const { code, stdout, stderr } = await cli('simulate', '--seeds', '1', '--model', 'synthetic', '--methods', 'fedex,ffa', '--clients', '3', '--rounds', '3', '--local-steps', '2', '--dp-clip', '0.05', '--dp-noise', String(sigma), '--out',
      out, '--events', eventsFile);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /client-level DP: each client's update clipped to L2 norm 0\.0500, noise multiplier 1\.10 .* sampling rate 1/);
    const closed = await events(eventsFile);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as SimulationReport;
    assert.deepEqual(report.settings.privacy, { clip: 0.05, noiseMultiplier: sigma, delta: 1e-5 });
    const html = await readFile(join(out, 'report.html'), 'utf8');
    assert.match(html, /<th>DP ε<\/th>/);
    for (const method of ['fedex', 'ffa']) {
      const records = closed.filter((e) => e.method === method);
      assert.equal(records.length, 3);
      let previous = 0;
      for (const [i, r] of records.entries()) {
        const want = spent(sigma, i + 1);
        const p = r.privacy!;
        assert.ok(Math.abs(p.epsilon! - want) <= 1e-12 * want, `${method} round ${i + 1}: ε ${p.epsilon} vs ${want}`);
        assert.ok(p.epsilon! > previous);
        previous = p.epsilon!;
        assert.equal(p.releases, i + 1);
        assert.match(stdout, new RegExp(`  ${method} round ${i + 1}: DP ε = ${epsilonText(want).replace('.', '\\.')} at δ = 1e-5 after ${i + 1} rounds?, ${p.clipped} of 3 updates clipped`));
        const row = report.methods.find((m) => m.method === method)!.rounds.find((x) => x.round === i + 1)!;
        assert.equal(row.privacy!.epsilon, p.epsilon);
        assert.ok(html.includes(`<td>${want.toPrecision(4)}</td>`), `report.html shows ${method} round ${i + 1}'s ε ${want.toPrecision(4)}`);
      }
    }
    assert.match(stdout, new RegExp(`Client-level DP at δ = 1e-5: fedex ε = ${epsilonText(spent(sigma, 3)).replace('.', '\\.')}, ffa ε = `));
    // The dashboard's model of the same stream: per-round ε in the rounds table and the latest in the progress panel.
    const lines = (await readFile(eventsFile, 'utf8')).trim().split('\n').map((l) => parseEventLine(l)!);
    const state = lines.reduce(reduceFederation, initialFederation({ id: 'sim', label: 'dp', kind: 'simulation', live: false }));
    const fedex = state.runs.find((r) => r.key === 'fedex')!;
    assert.deepEqual(roundRows(fedex).map((r) => r.epsilon), closed.filter((e) => e.method === 'fedex').map((e) => e.privacy!.epsilon));
    assert.deepEqual(privacySummary(fedex), { epsilon: spent(sigma, 3), delta: 1e-5, releases: 3, clipped: closed.filter((e) => e.method === 'fedex')[2].privacy!.clipped, updates: 3 });
  });

  test('fedex host + 2 × fedex join (separate processes): the host prints ε after every round, as the accountant gives it, and at the end', async () => {
    const runDir = join(tmp.path, 'host');
    const eventsFile = join(tmp.path, 'host.jsonl');
    const env = { FEDEX_TOKEN: 'dp-token-0123456789abcdef' };
    const sigma = 2;
    const host = start(['host', '--model', 'synthetic', '--port', '0', '--rounds', '3', '--local-steps', '2', '--min-clients', '2', '--quorum', '2', '--dp-clip', '0.05', '--dp-noise', String(sigma), '--dp-delta', '1e-6', '--out', runDir,
      '--events', eventsFile], { env });
    const url = await waitForHostUrl(host);
    const joins = [1, 2].map((i) => start(['join', url, '--model', 'synthetic', '--client-id', `c${i}`, '--events', join(tmp.path, `join-${i}.jsonl`)], { env }));
    const [h, ...js] = await Promise.all([host.done, ...joins.map((j) => j.done)]);
    for (const j of js) assert.equal(j.code, 0, j.stderr);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /client-level DP: .* ε reported at δ = 1e-6 with sampling rate 1: .* no amplification by sampling is claimed/);
    const closed = await events(eventsFile);
    assert.equal(closed.length, 3);
    for (let k = 1; k <= 3; k++) {
      const want = spent(sigma, k, 1e-6);
      assert.ok(Math.abs(closed[k - 1].privacy!.epsilon! - want) <= 1e-12 * want);
      assert.match(h.stdout, new RegExp(`round ${k} closed \\(all_reported\\): 2 updates aggregated, mean train loss [\\d.]+, DP ε = ${epsilonText(want).replace('.', '\\.')} \\(δ = 1e-6\\) after ${k} rounds?, \\d of 2 updates clipped`));
    }
    assert.ok(spent(sigma, 1, 1e-6) < spent(sigma, 2, 1e-6) && spent(sigma, 2, 1e-6) < spent(sigma, 3, 1e-6));
    assert.match(h.stdout, new RegExp(`privacy spent: ε = ${epsilonText(spent(sigma, 3, 1e-6)).replace('.', '\\.')} at δ = 1e-6 over 3 released rounds`));
    // Clients are not told the participants' losses under DP.
    const joined = (await readFile(join(tmp.path, 'join-1.jsonl'), 'utf8')).trim().split('\n').map((l) => parseEventLine(l)!).filter((e) => e.type === 'join_round_closed') as CliEventOf<'join_round_closed'>[];
    assert.equal(joined.length, 3);
    for (const e of joined) assert.equal(e.meanLoss, null);
  });

  test('bad DP flags are usage errors naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['simulate', '--dp-noise', '1'], /--dp-noise needs --dp-clip C/],
      [['simulate', '--dp-clip', '1'], /--dp-clip needs --dp-noise σ/],
      [['simulate', '--dp-clip', '0', '--dp-noise', '1'], /--dp-clip must be a number > 0, got '0'/],
      [['simulate', '--dp-clip', '1', '--dp-noise=-1'], /--dp-noise must be a number ≥ 0, got '-1'/],
      [['simulate', '--dp-clip', '1', '--dp-noise', '1', '--dp-delta', '2'], /--dp-delta must be a number in \(0, 1\), got '2'/],
      [['simulate', '--dp-clip', '1', '--dp-noise', '1', '--dp-delta', '1'], /--dp-delta must be a number in \(0, 1\), got '1'/],
      [['simulate', '--dp-clip', '1', '--dp-noise', '1', '--residual-rank', '2'], /client-level DP \(--dp-clip\) cannot be combined with --residual-rank/],
      [['host', '--model', 'synthetic', '--dp-clip', '1', '--dp-noise', '1', '--weighting', 'examples', '--out', join(tmp.path, 'x')], /cannot be combined with --weighting examples/],
      [['host', '--resume', join(tmp.path, 'host'), '--dp-clip', '1', '--dp-noise', '1'], /cannot be given with --resume: a run keeps the DP settings it started with/],
    ];
    for (const [argv, message] of cases) {
      const { code, stderr } = await cli(...argv);
      assert.equal(code, 2, `${argv.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
    }
  });
});
