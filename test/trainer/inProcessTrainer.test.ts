// The training loop with real components (graph → onnxruntime): LoRA fine-tuning of the shipped
// tiny GPT-2 learns task:sentiment to a stated accuracy, and runs are bit-for-bit reproducible from
// the seed (data order, LoRA dropout masks, adapter init) on one machine.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InProcessTrainer } from '../../src/trainer/inProcessTrainer.js';
import { createTrainer } from '../../src/trainer/loraTrainer.js';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import type { TrainerSetup, TrainOutcome } from '../../src/trainer/types.js';
import { tinySource } from './fixtures.js';
import { adapterBytes, SHIPPED_MODEL, smallSetup } from './setups.js';

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

describe('InProcessTrainer', () => {
  test('150 steps of LoRA on the shipped tiny GPT-2 take task:sentiment from chance to ≥ 85% held-out accuracy, and the loss falls', { timeout: 60_000 }, async () => {
    const setup = smallSetup({
      modelDir: SHIPPED_MODEL,
      data: 'task:sentiment?count=512&evalCount=100',
      batchSize: 16,
      seqLen: 32,
      seed: 1,
      lr: 1e-2,
      maxGradNorm: 1,
    });
    const trainer = await createTrainer(setup, { worker: false });
    try {
      const start = trainer.initialAdapter(1);
      const before = await trainer.evaluate({ adapter: start });
      const losses: number[] = [];

      const outcome = await trainer.train({ adapter: start }, { steps: 150 }, { onProgress: (p) => losses.push(p.loss) });
      const afterwards = await trainer.evaluate({ adapter: outcome.adapter });

      assert.equal(trainer.info.task, 'sequence-classification');
      assert.ok(before.accuracy! < 0.7, `before training: accuracy ${before.accuracy}`);
      assert.ok(afterwards.accuracy! >= 0.85, `after training: accuracy ${afterwards.accuracy} (< 85%)`);
      assert.ok(afterwards.loss < 0.5 * before.loss, `eval loss ${before.loss} → ${afterwards.loss}`);
      assert.equal(losses.length, 150);
      assert.ok(mean(losses.slice(-20)) < 0.6 * mean(losses.slice(0, 20)), `train loss ${mean(losses.slice(0, 20))} (first 20) → ${mean(losses.slice(-20))} (last 20)`);
    } finally {
      await trainer.dispose();
    }
  });

  describe('determinism (tiny model, LoRA dropout 0.1, AdamW)', () => {
    const lora = defaultLoraSettings({ r: 4, alpha: 8, dropout: 0.1 });

    async function run(seed: number): Promise<{ outcome: TrainOutcome; startB: Float32Array }> {
      const setup: TrainerSetup = smallSetup({ data: 'task:sentiment?count=96&evalCount=8', lora, seed, batchSize: 8 });
      const trainer = await InProcessTrainer.create(setup, tinySource({ D: 8, H: 12 }));
      try {
        const start = trainer.initialAdapter(seed);
        const outcome = await trainer.train({ adapter: start }, { steps: 8 });
        return { outcome, startB: start.modules.get('model.fc')!.b.data };
      } finally {
        await trainer.dispose();
      }
    }

    test('the same seed gives the same adapter bit for bit; another seed gives another adapter', async () => {
      const first = await run(7);

      const again = await run(7);
      const other = await run(8);

      assert.ok(adapterBytes(first.outcome.adapter).equals(adapterBytes(again.outcome.adapter)), 'seed 7 twice: identical bytes');
      assert.equal(first.outcome.trainLoss, again.outcome.trainLoss);
      assert.ok(!adapterBytes(first.outcome.adapter).equals(adapterBytes(other.outcome.adapter)), 'seeds 7 and 8 differ');
    });

    test('a run reports its size and leaves the start adapter untouched (B stays zero)', async () => {
      const { outcome, startB } = await run(3);

      assert.equal(outcome.steps, 8);
      assert.equal(outcome.numExamples, 8 * 8);
      assert.ok(outcome.tokens > outcome.numExamples, `tokens ${outcome.tokens}`);
      assert.ok(Number.isFinite(outcome.trainLoss) && outcome.trainLoss > 0);
      assert.ok(startB.every((v) => v === 0), 'the start adapter was written to');
      assert.ok(outcome.adapter.modules.get('model.fc')!.b.data.some((v) => v !== 0), 'training moved B');
    });
  });
});
