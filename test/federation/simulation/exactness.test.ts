// FedEx-LoRA exactness with the real trainer over real sockets: a tiny GPT-2 (Conv1D c_attn,
// non-square) trained by onnxruntime in worker threads, 2 clients on non-IID shares of task:arith,
// 2 rounds through the coordinator on 127.0.0.1. From the saved adapters and bases: FedEx's global
// model equals the mean of the client models to float32 round-off in every round; FedIT's does not.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { MethodReport } from '../../../src/federation/simulation/report.js';
import { checkSavedRound } from './savedRounds.js';
import { runTinyMethod, suiteTinyFederation } from './tinyModel.js';

const SETTINGS = { clients: 2, rounds: 2, localSteps: 3, batchSize: 4, lr: 0.02, rank: 4, alpha: 8, seed: 3 };

describe('FedEx-LoRA vs FedIT with the onnxruntime trainer over loopback WebSockets', { timeout: 90_000 }, () => {
  const tiny = suiteTinyFederation('exactness', SETTINGS);
  const reports = new Map<string, MethodReport>();

  before(async () => {
    for (const method of ['fedex', 'fedit'] as const) reports.set(method, await runTinyMethod(tiny.path, method, method, tiny.workload, SETTINGS));
  });

  test('the layout comes from the model: both c_attn modules, Conv1D (fanInFanOut), non-square', () => {
    assert.deepEqual(tiny.workload.layout.map((m) => [m.module, m.in, m.out, m.fanInFanOut]), [
      ['transformer.h.0.attn.c_attn', 32, 96, true],
      ['transformer.h.1.attn.c_attn', 32, 96, true],
    ]);
  });

  test('FedEx: every round, global model = mean of the client models to float32 round-off', async () => {
    for (let round = 1; round <= SETTINGS.rounds; round++) {
      for (const c of await checkSavedRound(join(tiny.path, 'adapters', 'fedex'), round, tiny.workload.layout)) {
        assert.ok(c.size > 1e-5, `round ${round} ${c.module}: training changed the model (${c.size})`);
        assert.ok(c.err <= 1e-5 * c.size + 5e-8, `round ${round} ${c.module}: error ${c.err} vs update ${c.size}`);
      }
    }
    const r = reports.get('fedex')!;
    assert.ok(r.rounds[1].meanRelativeDeviation! > 0, 'the clients diverged, so there was a residual to fold in');
  });

  test('FedIT: the global model misses the mean of the client models by far more than round-off', async () => {
    const checks = await checkSavedRound(join(tiny.path, 'adapters', 'fedit'), 1, tiny.workload.layout);
    assert.ok(checks.every((c) => c.err > 1e-4 * c.size), `FedIT errors ${checks.map((c) => `${c.err} / ${c.size}`).join(', ')}`);
  });

  test('evaluations are finite and the train loss is reported per round', () => {
    for (const r of reports.values()) {
      for (const row of r.rounds.slice(1)) {
        assert.ok(Number.isFinite(row.evalLoss) && row.evalLoss > 0);
        assert.ok(row.trainLoss !== null && Number.isFinite(row.trainLoss));
      }
    }
  });
});
