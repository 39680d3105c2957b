// The synthetic trainer is deterministic per (seed, round), perturbs every factor except A under
// FFA-LoRA, and stops when aborted; the synthetic base hashes its content.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoraFactors } from '../../../src/core/lora.js';
import { createSyntheticBase, createSyntheticTrainer } from '../../../src/federation/client/syntheticTrainer.js';
import type { TrainConfig } from '../../../src/federation/client/trainer.js';
import { welcomeConfig, resolvePlan } from '../../../src/federation/coordinator/config.js';
import { initialAdapter } from '../../../src/federation/coordinator/initialState.js';
import { BASE, LAYOUT, coordinatorConfig } from '../coordinator/fixtures.js';

const plan = resolvePlan(coordinatorConfig('/unused'));
const config = (method: 'fedex' | 'ffa'): TrainConfig => ({ ...welcomeConfig({ ...plan, method }, 'float32'), timeLimitMs: 1000, clientName: 't' });
const info = { revision: 0, fromRevision: null, updatedModules: [], modules: BASE.modules };
const global: Map<string, LoraFactors> = initialAdapter(plan);

test('same seed and round → same adapter; another round or seed → another one; FFA keeps A', async () => {
  const signal = new AbortController().signal;
  const t = createSyntheticTrainer({ seed: 1, numExamples: 7 });
  const a = await t.train(1, global, info, config('fedex'), signal);
  const b = await createSyntheticTrainer({ seed: 1 }).train(1, global, info, config('fedex'), signal);
  const c = await t.train(2, global, info, config('fedex'), signal);
  const d = await createSyntheticTrainer({ seed: 2 }).train(1, global, info, config('fedex'), signal);
  const m = LAYOUT[0].module;
  assert.deepEqual(a.adapter.get(m)!.b.data, b.adapter.get(m)!.b.data);
  assert.notDeepEqual(a.adapter.get(m)!.b.data, c.adapter.get(m)!.b.data);
  assert.notDeepEqual(a.adapter.get(m)!.a.data, d.adapter.get(m)!.a.data);
  assert.notDeepEqual(a.adapter.get(m)!.a.data, global.get(m)!.a.data);
  assert.equal(a.numExamples, 7);
  assert.ok(Number.isFinite(a.trainLoss) && a.trainLoss > 0);
  const ffa = await t.train(1, global, info, config('ffa'), signal);
  for (const mod of LAYOUT) assert.deepEqual(ffa.adapter.get(mod.module)!.a.data, global.get(mod.module)!.a.data, 'FFA trains B only');
  assert.equal(global.get(m)!.b.data.every((v) => v === 0), true, 'the global adapter is not modified');
});

test('an aborted training rejects promptly', async () => {
  const controller = new AbortController();
  const t = createSyntheticTrainer({ seed: 1, delayMs: 10_000 });
  const started = Date.now();
  const p = t.train(1, global, info, config('fedex'), controller.signal);
  controller.abort(new Error('round closed'));
  await assert.rejects(p, /round closed/);
  assert.ok(Date.now() - started < 1000);
});

test('the synthetic base is seeded and its hash follows its content', () => {
  assert.equal(createSyntheticBase(LAYOUT, 7).hash, BASE.hash);
  assert.notEqual(createSyntheticBase(LAYOUT, 8).hash, BASE.hash);
  assert.match(BASE.hash, /^[0-9a-f]{64}$/);
  assert.deepEqual(BASE.modules.get(LAYOUT[0].module)!.shape, [16, 48], 'fanInFanOut: stored in × out');
});
