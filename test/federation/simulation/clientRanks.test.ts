// Heterogeneous client ranks end to end: a tiny GPT-2 (Conv1D c_attn, 32 → 96) trained by onnxruntime,
// 3 clients at ranks 4, 8 and 16 (global rank 16) over real loopback WebSockets, 3 rounds with FedEx-LoRA
// and with FLoRA. From the saved adapters and bases, every round's global model equals the mean of the
// client models, each on its own base (the previous global adapter's truncation folded in), to
// float32 round-off; and the saved client folders have the ranks the clients trained at.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { MethodReport } from '../../../src/federation/simulation/report.js';
import { checkSavedRoundWithRanks } from './savedRanks.js';
import { runTinyMethod, suiteTinyFederation } from './tinyModel.js';

const SETTINGS = { clients: 3, rounds: 3, localSteps: 3, batchSize: 4, lr: 0.02, rank: 16, alpha: 32, seed: 4 };
const CLIENT_RANKS = [4, 8, 16];

describe('client ranks 4, 8, 16 under a global rank 16: exact every round (fedex, flora)', { timeout: 180_000 }, () => {
  const tiny = suiteTinyFederation('client-ranks', SETTINGS);
  const reports = new Map<string, MethodReport>();

  before(async () => {
    for (const method of ['fedex', 'flora'] as const) {
      reports.set(method, await runTinyMethod(tiny.path, method, method, tiny.workload, SETTINGS, { clientRanks: CLIENT_RANKS }));
    }
  });

  for (const method of ['fedex', 'flora'] as const) {
    test(`${method}: every round, global model = mean of the client models on their own bases`, async () => {
      for (let round = 1; round <= SETTINGS.rounds; round++) {
        for (const c of await checkSavedRoundWithRanks(join(tiny.path, 'adapters', method), round, tiny.workload.layout)) {
          assert.deepEqual([...c.ranks].sort((a, b) => a - b), CLIENT_RANKS, `round ${round} ${c.module}: the clients trained at their ranks`);
          assert.ok(c.size > 1e-5, `round ${round} ${c.module}: training changed the model (${c.size})`);
          assert.ok(c.err <= 1e-5 * c.size + 5e-8, `round ${round} ${c.module}: error ${c.err} vs update ${c.size}`);
        }
      }
      const r = reports.get(method)!;
      assert.equal(r.rounds.length, SETTINGS.rounds + 1);
      for (const row of r.rounds.slice(1)) assert.ok(Number.isFinite(row.evalLoss) && row.evalLoss > 0);
    });
  }
});
