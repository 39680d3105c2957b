// A FedEx federation whose clients hold the frozen base in bf16 (`fedex simulate --base-precision
// bf16`, TrainerSetup.float32AdaptedBases): the bases that receive FedEx residuals — the adapted
// c_attn modules — stay float32 in every trainer, the rest is bf16 (constant through the run). So
// the aggregation stays exact: over 3 rounds the global model equals the mean of the client models
// to float32 round-off (the bound of exactness.test.ts), relative to the bf16-rounded frozen weights
// the clients train on; and the rounding does reach training (round 1's loss differs from fp32's).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MethodReport } from '../../../src/federation/simulation/report.js';
import type { SimulationWorkload } from '../../../src/federation/simulation/workload.js';
import type { BasePrecision } from '../../../src/model/basePrecision.js';
import { suiteTempDir } from '../../helpers/tempDir.js';
import { checkSavedRound } from './savedRounds.js';
import { runTinyMethod, tinyWorkload, writeTinyGpt2 } from './tinyModel.js';

const SETTINGS = { clients: 2, localSteps: 3, batchSize: 4, lr: 0.02, rank: 4, alpha: 8, seed: 3 };
const ROUNDS = 3;

describe('FedEx with the frozen base held in bf16', { timeout: 180_000 }, () => {
  const workloads: SimulationWorkload[] = [];
  after(async () => {
    for (const w of workloads) await w.dispose();
  });
  const tmp = suiteTempDir('bf16-federation');
  const reports = new Map<BasePrecision, MethodReport>();

  async function run(precision: BasePrecision, rounds: number): Promise<void> {
    const workload = await tinyWorkload(join(tmp.path, 'model'), SETTINGS, precision !== 'fp32' ? { basePrecision: precision } : {});
    workloads.push(workload);
    reports.set(precision, await runTinyMethod(tmp.path, precision, 'fedex', workload, { ...SETTINGS, rounds }));
  }

  before(async () => {
    await writeTinyGpt2(join(tmp.path, 'model'));
    await run('bf16', ROUNDS);
    await run('fp32', 1);
  });

  test('every round, the global model equals the mean of the client models to float32 round-off', async () => {
    const layout = workloads[0].layout;
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of await checkSavedRound(join(tmp.path, 'adapters', 'bf16'), round, layout)) {
        assert.ok(c.size > 1e-5, `round ${round} ${c.module}: training changed the model (${c.size})`);
        assert.ok(c.err <= 1e-5 * c.size + 5e-8, `round ${round} ${c.module}: error ${c.err} vs update ${c.size}`);
      }
    }
    assert.ok(reports.get('bf16')!.rounds[ROUNDS].meanRelativeDeviation! > 0, 'the clients diverged, so residuals were folded into the float32 bases');
  });

  test('the bf16 rounding reaches training: round 1 trains to another loss than fp32', () => {
    const bf16 = reports.get('bf16')!.rounds[1].trainLoss!;
    const fp32 = reports.get('fp32')!.rounds[1].trainLoss!;
    assert.ok(Number.isFinite(bf16) && Number.isFinite(fp32));
    assert.notEqual(bf16, fp32);
    assert.ok(Math.abs(bf16 - fp32) < 0.05 * Math.abs(fp32), `bf16 ${bf16} vs fp32 ${fp32}: rounding, not a different model`);
  });
});
