// Fed-SB with the real processes: `fedex host --method fedsb` and two `fedex join` clients complete
// 2 rounds with the real trainer (LoRA-SB: only R trained). From the host's --save-adapters folders
// every round's global model is the exact mean of the client models; the clients' uploads are R
// only (the host's events: raw bytes received = k · Σ r² · 4 a round). `fedex export` writes the run
// as one PEFT adapter on the original base whose `fedex eval` loss is the federation's final model's.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cli } from '../helpers/cliRun.js';
import { suiteFedex, waitForHostUrl, type FedexRun } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { suiteTinyGpt2 } from '../helpers/cliTinyGpt2.js';
import { checkSavedRoundWithRanks } from '../federation/simulation/savedRanks.js';

async function evalLoss(model: string, adapter?: string): Promise<number> {
  const r = await cli('eval', '--model', model, ...(adapter !== undefined ? ['--adapter', adapter] : []), '--data', 'task:arith?count=60', '--max-examples', '24', '--seq-len', '48', '--no-exact-match', '--json');
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { loss: number }).loss;
}

describe('fedex host --method fedsb + fedex join as separate processes', { timeout: 300_000 }, () => {
  const start = suiteFedex();
  const fedex = (...args: string[]): FedexRun => start(args);
  const tmp = suiteTempDir('cli-fedsb');
  const model = suiteTinyGpt2(tmp);

  test('fedex aggregate --method fedsb is refused, pointing at ffa (PEFT folders hold (A, B·R_i))', async () => {
    const r = await cli('aggregate', '--method', 'fedsb', '--base', model.path, '--adapters', join(tmp.path, 'a1'), '--out', join(tmp.path, 'agg'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--method fedsb is not offered offline: .*--method ffa averages B·R_i into B·R̄ and is exact for them/);
  });

  test("2 clients, 2 exact rounds, R-only uploads; the exported adapter evaluates to the federation's final model", async () => {
    const runDir = join(tmp.path, 'run');
    const events = join(tmp.path, 'host.jsonl');
    const host = fedex('host', '--model', model.path, '--port', '0', '--method', 'fedsb', '--rounds', '2', '--local-steps', '3', '--batch-size', '4', '--rank', '6', '--alpha', '12', '--lr', '0.05', '--min-clients', '2', '--quorum', '2',
      '--token', 'sb-token', '--out', runDir, '--save-adapters', '--events', events);
    const url = await waitForHostUrl(host);
    const joins = [1, 2].map((i) =>
      fedex('join', url, '--token', 'sb-token', '--model', model.path, '--data', 'task:arith?count=120', '--shard', `${i}/2`, '--seq-len', '48', '--threads', '1', '--name', `client ${i}`, '--client-id', `c${i}`)
    );
    const [h, j1, j2] = await Promise.all([host.done, ...joins.map((j) => j.done)]);
    assert.equal(j1.code, 0, j1.stderr);
    assert.equal(j2.code, 0, j2.stderr);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /fedsb federation/);
    assert.match(h.stdout, /round 2 closed \(all_reported\): 2 updates aggregated/);

    const adapters = join(runDir, 'adapters');
    const state = JSON.parse(await readFile(join(runDir, 'state.json'), 'utf8')) as { plan: { method: string; layout: { module: string; in: number; out: number; rank: number; fanInFanOut: boolean }[] } };
    assert.equal(state.plan.method, 'fedsb');
    const layout = state.plan.layout;
    for (let round = 1; round <= 2; round++) {
      for (const c of await checkSavedRoundWithRanks(adapters, round, layout)) {
        assert.ok(c.size > 1e-5, `round ${round} ${c.module}: training changed the model (${c.size})`);
        assert.ok(c.err <= 1e-5 * c.size + 5e-8, `round ${round} ${c.module}: error ${c.err} vs update ${c.size}`);
      }
    }
    const rBytes = layout.reduce((n, m) => n + 4 * m.rank * m.rank, 0);
    const closed = (await readFile(events, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; round?: number; traffic?: { rawReceived: number } })
      .filter((e) => e.type === 'round_closed');
    assert.equal(closed.length, 2);
    for (const e of closed) assert.equal(e.traffic?.rawReceived, 2 * rBytes, `round ${e.round}: 2 uploads of R only`);

    const exported = join(tmp.path, 'exported');
    const x = await cli('export', runDir, '--as', 'adapter', '--out', exported);
    assert.equal(x.code, 0, x.stderr);
    const last = join(adapters, 'round-002');
    const federated = await evalLoss(join(last, 'base'), join(last, 'global'));
    const viaExport = await evalLoss(model.path, join(exported, 'adapter'));
    assert.ok(Math.abs(viaExport - federated) <= 1e-4 * Math.abs(federated), `exported ${viaExport} vs federated ${federated}`);
    // The check has teeth: the federation moved the loss well beyond that tolerance.
    const untrained = await evalLoss(model.path);
    assert.ok(Math.abs(untrained - federated) > 1e-2 * Math.abs(federated), `base ${untrained} vs federated ${federated}`);
  });
});
