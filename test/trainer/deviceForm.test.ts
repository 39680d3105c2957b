// The WebGPU form of the trainer's graphs (fixed shapes with padded batches, LogSoftmax decomposed,
// int32 batch tensors, the dropout hash in uint32: src/trainer/deviceForm.ts, src/graph/lower.ts)
// checked on the CPU provider, where every machine can run it, against the graphs as built: the
// same step losses, adapter, eval loss, accuracy and greedy completions. test/gpu/webgpu.test.ts
// runs the same form on the WebGPU provider.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { writeSyntheticCheckpoint } from '../../src/model/checkpoints/synthetic.js';
import { saveBpeTokenizer } from '../../src/trainer/data/bpeTrainer.js';
import { AS_BUILT_FORM, WEBGPU_FORM, deviceForm } from '../../src/trainer/deviceForm.js';
import type { DeviceForm } from '../../src/trainer/deviceForm.js';
import { createTrainer } from '../../src/trainer/loraTrainer.js';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import type { EvalResult, TrainerSetup, TrainOutcome } from '../../src/trainer/types.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { taskTokenizerFiles } from './fixtures.js';
import { maxAdapterDiff, SHIPPED_MODEL, smallSetup } from './setups.js';

/**
 * Tolerances, WebGPU form against the graphs as built, both on the CPU provider, float32. Measured:
 * step losses up to 6.7e-7, eval losses up to 3.4e-7, adapters up to 2.7e-7. The forms differ only in
 * rounding: padded rows and tokens add exact zeros to sums whose blocking then changes, and
 * LogSoftmax's decomposition rounds differently from the fused kernel. A wrong padding, label,
 * mask or dropout mask moves the losses by 1e-2 or more.
 */
const LOSS_TOL = 5e-6;
const ADAPTER_TOL = 5e-6;

interface Run {
  readonly outcome: TrainOutcome;
  readonly losses: number[];
  readonly evaluation: EvalResult;
}

async function run(setup: TrainerSetup, form: DeviceForm, steps: number): Promise<Run> {
  const trainer = await createTrainer({ ...setup, form }, { worker: false });
  try {
    const losses: number[] = [];
    const outcome = await trainer.train({ adapter: trainer.initialAdapter(setup.seed) }, { steps }, { onProgress: (p) => losses.push(p.loss) });
    return { outcome, losses, evaluation: await trainer.evaluate({ adapter: outcome.adapter }) };
  } finally {
    await trainer.dispose();
  }
}

describe('the WebGPU form of the graphs, run on the CPU, matches the graphs as built', { timeout: 180_000 }, () => {
  const tmp = suiteTempDir('device-form');
  before(async () => {
    const tokenizer = taskTokenizerFiles();
    await writeSyntheticCheckpoint(join(tmp.path, 'llama'), { family: 'llama', layers: 2, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: tokenizer.vocabSize, positions: 64, seed: 3 });
    await writeSyntheticCheckpoint(join(tmp.path, 'bert'), { family: 'bert', layers: 2, hidden: 16, heads: 2, intermediate: 24, vocab: tokenizer.vocabSize, positions: 64, seed: 5 });
    for (const name of ['llama', 'bert']) await saveBpeTokenizer(join(tmp.path, name), tokenizer);
  });

  test('the CPU compiles as built; WebGPU gets the lowered, fixed-shape form', () => {
    assert.deepEqual(deviceForm('cpu'), AS_BUILT_FORM);
    assert.deepEqual(deviceForm('webgpu'), WEBGPU_FORM);
  });

  // Padded batches (examples of different lengths, 7 examples in batches of 3: the last batch has one
  // row), LoRA dropout (its masks depend on the unpadded shape), and prompt/completion exact match.
  const cases: { name: string; setup: () => TrainerSetup; steps: number }[] = [
    {
      name: 'GPT-2 (shipped), arith prompt/completion padded, LoRA dropout 0.1, greedy exact match',
      setup: () => smallSetup({ modelDir: SHIPPED_MODEL, data: 'task:arith?count=7&evalCount=5&seed=2', batchSize: 3, seqLen: 24, lora: defaultLoraSettings({ r: 4, alpha: 8, dropout: 0.1 }) }),
      steps: 4,
    },
    {
      name: 'Llama (grouped-query, all projections), LoRA dropout 0.1, 2 micro-batches per step (grads + apply sessions)',
      setup: () => smallSetup({
        modelDir: join(tmp.path, 'llama'),
        data: 'task:arith?count=7&evalCount=4&seed=1',
        batchSize: 2,
        seqLen: 32,
        gradAccumulation: 2,
        lora: defaultLoraSettings({ r: 4, alpha: 8, dropout: 0.1, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }),
      }),
      steps: 3,
    },
    {
      name: 'BERT classification (hidden and attention dropout 0.1 from config.json), padded rows and tokens',
      setup: () => smallSetup({ modelDir: join(tmp.path, 'bert'), data: 'task:sentiment?count=7&evalCount=5&seed=3', batchSize: 3, seqLen: 32 }),
      steps: 4,
    },
  ];

  for (const c of cases) {
    test(c.name, async (t) => {
      const setup = c.setup();

      const built = await run(setup, AS_BUILT_FORM, c.steps);
      const lowered = await run(setup, WEBGPU_FORM, c.steps);

      const lossDiff = Math.max(...built.losses.map((l, i) => Math.abs(l - lowered.losses[i])));
      const adapterDiff = maxAdapterDiff(built.outcome.adapter, lowered.outcome.adapter);
      const evalDiff = Math.abs(built.evaluation.loss - lowered.evaluation.loss);
      t.diagnostic(`max |Δ| step loss ${lossDiff.toExponential(2)}, eval loss ${evalDiff.toExponential(2)}, adapter ${adapterDiff.toExponential(2)}`);
      assert.equal(lowered.losses.length, c.steps);
      assert.ok(lossDiff <= LOSS_TOL, `step losses ${built.losses.join(', ')} vs ${lowered.losses.join(', ')}`);
      assert.ok(evalDiff <= LOSS_TOL, `eval loss ${built.evaluation.loss} vs ${lowered.evaluation.loss}`);
      assert.ok(adapterDiff <= ADAPTER_TOL, `adapters differ by up to ${adapterDiff}`);
      assert.equal(lowered.evaluation.scored, built.evaluation.scored);
      assert.equal(lowered.evaluation.accuracy, built.evaluation.accuracy);
      assert.equal(lowered.evaluation.exactMatch, built.evaluation.exactMatch);
      assert.ok(built.outcome.trainLoss > 0 && lowered.losses.every(Number.isFinite));
    });
  }
});
