// Trainer setup checks (setup.ts) and what createTrainer refuses before any model is loaded or any
// worker is started: every error names the field and the bad value.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { availableDevices, DEVICES } from '../../src/runtime/session.js';
import { createTrainer } from '../../src/trainer/loraTrainer.js';
import { checkSetup, defaultLoraSettings } from '../../src/trainer/setup.js';
import type { TrainerSetup } from '../../src/trainer/types.js';
import { smallSetup } from './setups.js';

/** A worker script that does not exist: reaching the worker would fail with a different message. */
const NO_WORKER = { path: '/nonexistent/fedex-trainer-worker.js', tsx: false };

describe('checkSetup', () => {
  test('accepts a valid setup', () => {
    assert.doesNotThrow(() => checkSetup(smallSetup()));
  });

  const cases: [string, Partial<TrainerSetup>, RegExp][] = [
    ['modelDir', { modelDir: '' }, /trainer setup: modelDir is empty/],
    ['data', { data: '' }, /trainer setup: data is empty \(give task:NAME or a \.jsonl path\)/],
    ['batchSize', { batchSize: 0 }, /trainer setup: batchSize must be a positive integer, got 0/],
    ['seqLen', { seqLen: 1 }, /trainer setup: seqLen must be an integer ≥ 2, got 1/],
    ['seed', { seed: Number.NaN }, /trainer setup: seed must be a finite number, got NaN/],
    ['optimizer', { optimizer: 'adam' as TrainerSetup['optimizer'] }, /trainer setup: optimizer must be adamw or sgd, got 'adam'/],
    ['lr', { lr: -0.1 }, /trainer setup: lr must be a finite number ≥ 0, got -0\.1/],
    ['warmupSteps', { warmupSteps: 1.5 }, /trainer setup: warmupSteps must be a non-negative integer, got 1\.5/],
    ['schedule', { schedule: 'step' as TrainerSetup['schedule'] }, /trainer setup: schedule must be one of constant, linear, cosine, got 'step'/],
    ['weightDecay', { weightDecay: -1 }, /trainer setup: weightDecay must be a finite number ≥ 0, got -1/],
    ['maxGradNorm', { maxGradNorm: 0 }, /trainer setup: maxGradNorm must be a number > 0, got 0/],
    ['gradAccumulation', { gradAccumulation: 0 }, /trainer setup: gradAccumulation must be a positive integer, got 0/],
    ['evalBatchSize', { evalBatchSize: 2.5 }, /trainer setup: evalBatchSize must be a positive integer, got 2\.5/],
    ['device', { device: 'tpu' as TrainerSetup['device'] }, /trainer setup: device must be one of cpu, cuda, webgpu, got 'tpu'/],
    ['threads', { threads: 0 }, /trainer setup: threads must be a positive integer, got 0/],
    ['lora.r', { lora: defaultLoraSettings({ r: 0 }) }, /trainer setup: lora\.r must be a positive integer, got 0/],
    ['lora.alpha', { lora: defaultLoraSettings({ alpha: Number.POSITIVE_INFINITY }) }, /trainer setup: lora\.alpha must be finite, got Infinity/],
    ['lora.dropout', { lora: defaultLoraSettings({ dropout: 1 }) }, /trainer setup: lora\.dropout must be in \[0, 1\), got 1/],
  ];
  for (const [field, override, message] of cases) {
    test(`a bad ${field} is a RangeError naming it`, () => {
      const setup = smallSetup(override);

      const run = (): void => checkSetup(setup);

      assert.throws(run, (err: unknown) => err instanceof RangeError && message.test(err.message));
    });
  }

  test("defaultLoraSettings: r 8, alpha 16, no dropout, the architecture's target modules, overrides win", () => {
    const lora = defaultLoraSettings({ r: 2 });

    assert.deepEqual(lora, { r: 2, alpha: 16, useRslora: false, dropout: 0, targetModules: [], freezeA: false, modulesToSave: [] });
  });
});

describe('createTrainer pre-checks', () => {
  test('a bad setup is refused before the worker starts (the missing worker script is never reached)', async () => {
    const setup = smallSetup({ batchSize: -4 });

    const created = createTrainer(setup, { workerEntry: NO_WORKER });

    await assert.rejects(created, (err: unknown) => err instanceof RangeError && /batchSize must be a positive integer, got -4/.test(err.message));
  });

  const missing = DEVICES.find((d) => !availableDevices().includes(d));
  test('a device this installation lacks is refused, listing the devices it has', { skip: missing === undefined ? 'every device is available here' : false }, async () => {
    const setup = smallSetup({ device: missing! });

    const created = createTrainer(setup, { workerEntry: NO_WORKER });

    await assert.rejects(created, (err: unknown) =>
      err instanceof Error && err.name === 'DeviceUnavailableError'
      && err.message.includes(`device '${missing!}' is not available`) && err.message.includes(`Available here: ${availableDevices().join(', ')}`));
  });

  test('a missing worker script is named, with the build command that makes it', async () => {
    const setup = smallSetup();

    const created = createTrainer(setup, { workerEntry: NO_WORKER });

    await assert.rejects(created, /the worker script \/nonexistent\/fedex-trainer-worker\.js is missing \(run 'npm run build'/);
  });
});
