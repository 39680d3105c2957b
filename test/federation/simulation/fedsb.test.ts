// Fed-SB end to end (docs/math.md §1.5): a tiny GPT-2 (Conv1D c_attn, 32 → 96, non-square) trained by
// onnxruntime, 3 clients over real loopback WebSockets, 3 rounds. From the saved adapters (PEFT
// folders: each client as (A, B·R_i), the global as (A, B·R̄)) every round's global model equals the
// mean of the client models to float32 round-off, with the base unchanged; every client kept the
// global A bit for bit. On the wire each round's uploads are exactly k · Σ r² float32 values (R only),
// and only the first round_start a client gets carries the frozen A and B.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { RoundRecord } from '../../../src/federation/coordinator/events.js';
import { readPeftAdapter } from '../../../src/formats/peft.js';
import { roundDir } from '../../../src/federation/shared/adapterFolders.js';
import type { MethodReport } from '../../../src/federation/simulation/report.js';
import { checkSavedRoundWithRanks } from './savedRanks.js';
import { readBase } from './savedRounds.js';
import { runTinyMethod, suiteTinyFederation } from './tinyModel.js';

const SETTINGS = { clients: 3, rounds: 3, localSteps: 3, batchSize: 4, lr: 0.05, rank: 6, alpha: 12, seed: 8 };

describe('fedsb: 3 clients, 3 rounds, exact every round, R only on the uplink', { timeout: 180_000 }, () => {
  const tiny = suiteTinyFederation('fedsb-sim', SETTINGS);
  let report: MethodReport;
  const records: RoundRecord[] = [];

  before(async () => {
    report = await runTinyMethod(tiny.path, 'fedsb', 'fedsb', tiny.workload, SETTINGS, { onRound: (_row, record) => records.push(record) });
  });

  test('every round: global model = mean of the client models; base unchanged; A shared bit for bit', async () => {
    const dir = join(tiny.path, 'adapters', 'fedsb');
    for (let round = 1; round <= SETTINGS.rounds; round++) {
      for (const c of await checkSavedRoundWithRanks(dir, round, tiny.workload.layout)) {
        assert.ok(c.size > 1e-5, `round ${round} ${c.module}: training changed the model (${c.size})`);
        assert.ok(c.err <= 1e-5 * c.size + 5e-8, `round ${round} ${c.module}: error ${c.err} vs update ${c.size}`);
      }
      const before = await readBase(join(roundDir(dir, round - 1), 'base'), tiny.workload.layout);
      const after = await readBase(join(roundDir(dir, round), 'base'), tiny.workload.layout);
      for (const m of tiny.workload.layout) assert.deepEqual(after.get(m.module), before.get(m.module), `round ${round} ${m.module}: Fed-SB leaves the base as it is`);
      const global = await readPeftAdapter(join(roundDir(dir, round), 'global'));
      for (const c of ['client-1', 'client-2', 'client-3']) {
        const client = await readPeftAdapter(join(roundDir(dir, round), 'clients', c));
        for (const m of global.modules) {
          assert.deepEqual(client.modules.find((x) => x.modulePath === m.modulePath)!.A.data, m.A.data, `round ${round} ${c} ${m.modulePath}: lora_A frozen`);
        }
      }
    }
    assert.equal(report.rounds.length, SETTINGS.rounds + 1);
    for (const row of report.rounds.slice(1)) assert.ok(Number.isFinite(row.evalLoss) && row.evalLoss > 0);
  });

  test('uplink: k · Σ r² · 4 raw bytes a round; downlink: A and B once, then R only', async () => {
    const state = JSON.parse(await readFile(join(tiny.path, 'runs', 'fedsb', 'state.json'), 'utf8')) as { plan: { method: string } };
    assert.equal(state.plan.method, 'fedsb');
    const layout = tiny.workload.layout;
    const rBytes = layout.reduce((n, m) => n + 4 * m.rank * m.rank, 0);
    const abBytes = layout.reduce((n, m) => n + 4 * m.rank * (m.in + m.out), 0);
    assert.equal(records.length, SETTINGS.rounds);
    for (const r of records) {
      assert.equal(r.traffic.rawReceived, SETTINGS.clients * rBytes, `round ${r.round}: uploads carry R only`);
      // Framing: one small JSON header and tensor table per upload.
      assert.ok(r.traffic.received - r.traffic.rawReceived < SETTINGS.clients * 1024, `round ${r.round}: ${r.traffic.received} frame bytes for ${r.traffic.rawReceived} raw`);
      const expectedSent = SETTINGS.clients * (rBytes + (r.round === 1 ? abBytes : 0));
      assert.equal(r.traffic.rawSent, expectedSent, `round ${r.round}: round_start carries ${r.round === 1 ? 'A, B and R' : 'R only'}`);
    }
  });
});
