// createTrainer's default path: the trainer in a worker thread (WorkerTrainer + worker/entry.ts,
// through tsx), with a real model folder. Progress events carry step, loss, lr (the schedule's),
// tokens/s, ETA and epoch; an AbortSignal stops a run without hanging and leaves the trainer
// usable, also when the worker must be terminated; worker errors arrive with their name, code
// and message.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isAbortError, TrainerAbortError } from '../../src/trainer/errors.js';
import { createTrainer } from '../../src/trainer/loraTrainer.js';
import { learningRate } from '../../src/trainer/schedule.js';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import type { LoraTrainer, TrainOutcome, TrainProgress } from '../../src/trainer/types.js';
import { SHIPPED_MODEL, smallSetup } from './setups.js';
import { suiteTinyGpt2Trainer } from './tinyTrainer.js';

describe('WorkerTrainer (createTrainer default)', { timeout: 60_000 }, () => {
  const tiny = suiteTinyGpt2Trainer('worker-trainer', 'model', {
    data: 'task:arith?count=40&evalCount=8',
    lora: defaultLoraSettings({ r: 2, alpha: 4 }),
    batchSize: 4,
    seqLen: 64,
    lr: 1e-2,
    schedule: 'linear',
    warmupSteps: 2,
  });

  test('reports every step: step/totalSteps, finite loss, the scheduled lr, tokens/s, an ETA ≥ 0 ending at 0, the epoch', async () => {
    const events: TrainProgress[] = [];
    const perEpoch = Math.ceil(tiny.trainer.info.trainExamples / tiny.setup.batchSize);

    const outcome = await tiny.trainer.train({ adapter: tiny.trainer.initialAdapter(0) }, { steps: 12 }, { onProgress: (p) => events.push(p) });

    assert.ok(perEpoch < 12, `the run crosses an epoch (${perEpoch} batches per epoch)`);
    assert.deepEqual(events.map((e) => e.step), Array.from({ length: 12 }, (_, i) => i + 1));
    for (const e of events) {
      assert.equal(e.totalSteps, 12);
      assert.ok(Number.isFinite(e.loss) && e.loss > 0, `loss ${e.loss}`);
      assert.ok(Math.abs(e.lr - learningRate({ kind: 'linear', lr: 1e-2, totalSteps: 12, warmupSteps: 2 }, e.step - 1)) < 1e-15, `lr at step ${e.step}: ${e.lr}`);
      assert.ok(e.tokensPerSecond > 0, `tokens/s ${e.tokensPerSecond}`);
      assert.ok(e.etaSeconds >= 0, `eta ${e.etaSeconds}`);
      assert.equal(e.epoch, Math.floor((e.step - 1) / perEpoch), `epoch at step ${e.step}`);
    }
    assert.equal(events[0].lr, 0, 'warm-up starts at lr 0');
    assert.equal(events[11].etaSeconds, 0);
    assert.equal(outcome.steps, 12);
    const m = tiny.trainer.modules[0];
    const factors = outcome.adapter.modules.get(m.path)!;
    assert.ok(factors.b.data instanceof Float32Array && factors.b.data.length === m.outFeatures * 2, 'B crossed the thread boundary whole');
    assert.ok(factors.b.data.some((v) => v !== 0), 'training moved B');
  });

  test('aborting mid-run rejects promptly with an AbortError, and the trainer still serves the next request', async () => {
    const controller = new AbortController();
    let seen = 0;
    const started = performance.now();

    const run = tiny.trainer.train({ adapter: tiny.trainer.initialAdapter(0) }, { steps: 1_000_000 }, { signal: controller.signal,
      onProgress: () => {
        if (++seen === 3) controller.abort();
      } });

    await assert.rejects(run, (err: unknown) => err instanceof TrainerAbortError && err.name === 'AbortError' && err.code === 'ABORT_ERR' && /training was aborted/.test(err.message));
    assert.ok(performance.now() - started < 10_000, 'stopped well before the million steps');
    const next = await tiny.trainer.evaluate({ adapter: tiny.trainer.initialAdapter(0) }, { exactMatch: false });
    assert.ok(Number.isFinite(next.loss));
  });

  test('an already-aborted signal rejects without running a step', async () => {
    const events: TrainProgress[] = [];

    const run = tiny.trainer.train({ adapter: tiny.trainer.initialAdapter(0) }, { steps: 5 }, { signal: AbortSignal.abort(), onProgress: (p) => events.push(p) });

    await assert.rejects(run, (err: unknown) => isAbortError(err) && /aborted before it started/.test((err as Error).message));
    assert.equal(events.length, 0);
  });

  test('errors thrown in the worker arrive with their name and message; the trainer keeps working', async () => {
    const start = tiny.trainer.initialAdapter(0);

    const badSteps = (): Promise<TrainOutcome> => tiny.trainer.train({ adapter: start }, { steps: -1 });
    const noFactors = (): Promise<TrainOutcome> => tiny.trainer.train({ adapter: { modules: new Map() } }, { steps: 1 });

    await assert.rejects(badSteps, (err: unknown) => err instanceof Error && err.name === 'RangeError' && err.message === 'train: steps must be a non-negative integer, got -1');
    for (const lr of [Number.NaN, -0.1, Infinity]) {
      await assert.rejects(tiny.trainer.train({ adapter: start }, { steps: 1, lr }), (err: unknown) => err instanceof Error && err.name === 'RangeError' && err.message === `train: lr must be a finite number ≥ 0, got ${lr}`);
    }
    await assert.rejects(noFactors, (err: unknown) =>
      err instanceof Error && err.message === `trainer: the adapter has no factors for module '${tiny.trainer.modules[0].path}'`
      && (err.stack ?? '').includes('(in the trainer worker)'));
    const ok = await tiny.trainer.train({ adapter: start }, { steps: 1 });
    assert.equal(ok.steps, 1);
  });

  test("a worker that cannot build its trainer rejects createTrainer with the worker's typed error", async () => {
    const missingFolder = (): Promise<LoraTrainer> => createTrainer({ ...tiny.setup, modelDir: join(tiny.path, 'no-such-model') });
    const unknownTask = (): Promise<LoraTrainer> => createTrainer({ ...tiny.setup, data: 'task:nope' });

    await assert.rejects(missingFolder, (err: unknown) =>
      err instanceof Error && err.name === 'ModelError'
      && (err as Error & { code?: string }).code === 'CHECKPOINT_NOT_FOUND' && err.message.includes(join(tiny.path, 'no-such-model')));
    await assert.rejects(unknownTask, /unknown task "task:nope"; built-in tasks: task:arith, .*task:sentiment/);
  });
});

describe('WorkerTrainer abort grace', { timeout: 60_000 }, () => {
  test('a worker still busy after abortGraceMs: the call rejects as aborted, the process survives, the next call gets a fresh worker', async () => {
    // 16 packed rows of 128 tokens on one thread: ≥ 50 ms a step (the first ones ~0.5 s). The abort comes
    // 15 ms into step 2 and the grace is 10 ms, so the worker is still inside onnxruntime when the grace
    // ends. Terminating it there used to abort this whole process (onnxruntime-node's std::terminate).
    const setup = smallSetup({
      modelDir: SHIPPED_MODEL,
      data: 'task:arith?count=256&evalCount=8',
      packing: true,
      batchSize: 16,
      seqLen: 128,
      lr: 1e-3,
    });
    const trainer = await createTrainer(setup, { abortGraceMs: 10 });
    try {
      const controller = new AbortController();

      const run = trainer.train({ adapter: trainer.initialAdapter(0) }, { steps: 1000 }, { signal: controller.signal,
        onProgress: (p) => {
          if (p.step === 1) setTimeout(() => controller.abort(), 15);
        } });

      await assert.rejects(run, (err: unknown) => isAbortError(err) && /the worker did not stop within 10 ms and is ended after its current step/.test((err as Error).message));
      const next = await trainer.evaluate({ adapter: trainer.initialAdapter(0) }, { exactMatch: false, maxExamples: 4 });
      assert.ok(Number.isFinite(next.loss) && next.examples === 4);
      await trainer.dispose();
      await assert.rejects(trainer.evaluate({ adapter: trainer.initialAdapter(0) }), /trainer: used after dispose\(\)/);
    } finally {
      await trainer.dispose();
    }
  });
});
