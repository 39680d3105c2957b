// Gradient accumulation (StepRunner's grads + apply sessions) against the fused step session: two
// micro-batches of 4 make the same optimizer step as one batch of 8 from the same data order, with
// micro-batch losses weighted by their scored tokens (causal LM rows have different lengths) and
// the gradient clipped after summing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InProcessTrainer } from '../../src/trainer/inProcessTrainer.js';
import type { AdapterTensors, TrainerSetup } from '../../src/trainer/types.js';
import { tinySource } from './fixtures.js';
import { adapterBytes, maxAdapterDiff, smallSetup } from './setups.js';

interface Run {
  readonly start: AdapterTensors;
  readonly end: AdapterTensors;
  readonly losses: number[];
}

async function threeSteps(setup: TrainerSetup): Promise<Run> {
  const trainer = await InProcessTrainer.create(setup, tinySource({ D: 8, H: 12 }));
  try {
    const start = trainer.initialAdapter(2);
    const losses: number[] = [];
    const outcome = await trainer.train({ adapter: start }, { steps: 3 }, { onProgress: (p) => losses.push(p.loss) });
    return { start, end: outcome.adapter, losses };
  } finally {
    await trainer.dispose();
  }
}

describe('gradient accumulation', () => {
  test('2 micro-batches of 4 make the same 3 clipped SGD steps, with the same step losses, as batches of 8', async () => {
    const common = { data: 'task:arith?count=48&evalCount=4', seqLen: 96, optimizer: 'sgd' as const, lr: 0.5, maxGradNorm: 0.5, seed: 3 };

    const fused = await threeSteps(smallSetup({ ...common, batchSize: 8 }));
    const accumulated = await threeSteps(smallSetup({ ...common, batchSize: 4, gradAccumulation: 2 }));

    assert.ok(adapterBytes(fused.start).equals(adapterBytes(accumulated.start)), 'same start');
    const moved = maxAdapterDiff(fused.start, fused.end);
    assert.ok(moved > 1e-2, `training moved the adapter by ${moved}`);
    const diff = maxAdapterDiff(fused.end, accumulated.end);
    assert.ok(diff < 1e-4 * moved, `adapters differ by ${diff} (moved ${moved})`);
    assert.equal(accumulated.losses.length, 3);
    fused.losses.forEach((l, i) => assert.ok(Math.abs(l - accumulated.losses[i]) < 1e-5, `step ${i + 1} loss ${l} vs ${accumulated.losses[i]}`));
  });
});
