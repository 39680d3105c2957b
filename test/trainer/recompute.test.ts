// Activation recomputation (src/graph/autodiff.ts, src/trainer/memoryPlan.ts) in the trainer: the
// same steps from the same start with `recompute: 'on'` and `'off'` give the same step losses and
// the same trained adapter, for every family that marks its blocks (GPT-2 with its own dropouts and
// LoRA dropout, so the recomputed masks must be the forward's; a Llama checkpoint with GQA; Gemma 2
// with soft caps and sliding windows; BERT classification), through the fused train step and the
// gradient session of gradient accumulation, and over an int4 base whose widened weights are
// themselves recomputed. Bounds: step losses within 1e-6 (measured when written: equal), adapters
// within 1e-4 of how far training moved them (measured: equal for GPT-2 and BERT; ≤ 2.5e-5 for the
// rest, float32 rounding where onnxruntime fuses the recomputed kernels differently, which AdamW's
// normalisation carries into the update). And the planner: `auto` keeps activations
// unless one row does not fit without recomputation; `off` says that auto would have helped.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { writeSyntheticCheckpoint } from '../../src/model/checkpoints/synthetic.js';
import { saveBpeTokenizer } from '../../src/trainer/data/bpeTrainer.js';
import { InProcessTrainer } from '../../src/trainer/inProcessTrainer.js';
import { MemoryBudgetError } from '../../src/trainer/memoryPlan.js';
import { openModelSource } from '../../src/trainer/modelFolder.js';
import type { TrainerSetup } from '../../src/trainer/types.js';
import { cli } from '../helpers/cliRun.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { gemma2Tiny, writeGemmaFolder } from '../model/gemma/tinyFolder.js';
import { taskTokenizerFiles } from './fixtures.js';
import { maxAdapterDiff, smallSetup, SHIPPED_MODEL } from './setups.js';

const STEPS = 3;
const LOSS_TOL = 1e-6;
const ADAPTER_REL_TOL = 1e-4;

interface Run {
  readonly losses: number[];
  readonly diffFromStart: number;
  readonly recompute: boolean;
  readonly trainBytes: number;
  readonly end: Awaited<ReturnType<InProcessTrainer['train']>>['adapter'];
}

async function run(model: string, overrides: Partial<TrainerSetup>): Promise<Run> {
  const setup = smallSetup({ modelDir: model, data: 'task:arith?count=64&evalCount=16', ...overrides });
  const trainer = await InProcessTrainer.create(setup, await openModelSource(model));
  try {
    const start = trainer.initialAdapter(1);
    const losses: number[] = [];
    const out = await trainer.train({ adapter: start }, { steps: STEPS }, { onProgress: (p) => losses.push(p.loss) });
    return { losses, diffFromStart: maxAdapterDiff(start, out.adapter), recompute: trainer.info.memory.recompute, trainBytes: trainer.info.memory.estimate.trainBytes, end: out.adapter };
  } finally {
    await trainer.dispose();
  }
}

describe('trainer: activation recomputation', { timeout: 600_000 }, () => {
  const tmp = suiteTempDir('recompute');
  let llama: string;
  let gemma: string;
  let bert: string;

  before(async () => {
    const tokenizer = taskTokenizerFiles();
    llama = join(tmp.path, 'llama');
    gemma = join(tmp.path, 'gemma2');
    bert = join(tmp.path, 'bert');
    await writeSyntheticCheckpoint(llama, { family: 'llama', layers: 3, hidden: 32, heads: 2, kvHeads: 1, intermediate: 64, vocab: tokenizer.vocabSize, positions: 64, seed: 3 });
    await writeGemmaFolder(gemma, gemma2Tiny(tokenizer.vocabSize));
    await writeSyntheticCheckpoint(bert, { family: 'bert', layers: 2, hidden: 32, heads: 2, intermediate: 64, vocab: tokenizer.vocabSize, positions: 64, seed: 4 });
    for (const dir of [llama, gemma, bert]) await saveBpeTokenizer(dir, tokenizer);
  });

  const all = { ...smallSetup().lora, targetModules: [] as string[], dropout: 0.1 };
  const cases: readonly { name: string; model: () => string; setup: Partial<TrainerSetup> }[] = [
    { name: 'GPT-2 (models/tiny-gpt2), its dropouts and LoRA dropout 0.1', model: () => SHIPPED_MODEL, setup: { lora: all } },
    { name: 'Llama (3 layers, GQA, every projection), gradient accumulation 2', model: () => llama, setup: { lora: { ...all, targetModules: ['all-linear'] }, gradAccumulation: 2 } },
    { name: 'Gemma 2 (soft caps, sliding window)', model: () => gemma, setup: { lora: all } },
    { name: 'BERT classification', model: () => bert, setup: { lora: all, data: 'task:sentiment?count=64&evalCount=16' } },
    { name: 'Llama with an int4 base (widened weights recomputed inside recomputed blocks)', model: () => llama, setup: { lora: all, basePrecision: 'int4' } },
  ];
  for (const c of cases) {
    test(`${c.name}: the same losses and adapter with and without recomputation`, async (t) => {
      const kept = await run(c.model(), { ...c.setup, recompute: 'off' });
      const again = await run(c.model(), { ...c.setup, recompute: 'on' });

      assert.deepEqual([kept.recompute, again.recompute], [false, true]);
      assert.ok(kept.diffFromStart > 1e-3, `training moved the adapter by ${kept.diffFromStart}`);
      kept.losses.forEach((l, i) => assert.ok(Math.abs(l - again.losses[i]) <= LOSS_TOL, `step ${i + 1}: loss ${l} kept, ${again.losses[i]} recomputed`));
      const diff = maxAdapterDiff(kept.end, again.end);
      t.diagnostic(`losses ${kept.losses.join(', ')}; largest loss difference ${Math.max(...kept.losses.map((l, i) => Math.abs(l - again.losses[i])))}, adapter ${diff} (${(diff / kept.diffFromStart).toExponential(1)} of the update); `
        + `activation estimate ${(again.trainBytes / 2 ** 20).toFixed(2)} vs ${(kept.trainBytes / 2 ** 20).toFixed(2)} MiB`);
      assert.ok(diff <= ADAPTER_REL_TOL * kept.diffFromStart, `the adapters differ by ${diff}, training moved them by ${kept.diffFromStart}`);
      assert.ok(again.trainBytes < kept.trainBytes, `the estimate counts fewer activation bytes (${again.trainBytes} vs ${kept.trainBytes})`);
    });
  }

  test('auto: off when the batch fits; on when one row does not fit without it (and the note says so); off: the error says auto would help', async () => {
    const setup = { lora: all, seqLen: 32, batchSize: 8 };
    const roomy = await run(llama, { ...setup, memoryBudgetBytes: 4e9 });
    assert.equal(roomy.recompute, false);

    // A budget between one recomputed row and one kept row (the runtime's fixed share included).
    const oneRow = async (recompute: 'on' | 'off'): Promise<number> => {
      const t = await InProcessTrainer.create(smallSetup({ modelDir: llama, data: 'task:arith?count=64&evalCount=16', ...setup, batchSize: 1, recompute, memoryBudgetBytes: 4e9 }), await openModelSource(llama));
      const total = t.info.memory.estimate.totalBytes;
      await t.dispose();
      return total;
    };
    const [withRecompute, without] = [await oneRow('on'), await oneRow('off')];
    assert.ok(withRecompute < without, `${withRecompute} < ${without}`);
    const budget = Math.floor((withRecompute + without) / 2);

    const trainer = await InProcessTrainer.create(smallSetup({ modelDir: llama, data: 'task:arith?count=64&evalCount=16', ...setup, memoryBudgetBytes: budget }), await openModelSource(llama));
    try {
      const { recompute, note, microBatchSize } = trainer.info.memory;
      assert.equal(recompute, true);
      assert.ok(microBatchSize >= 1);
      assert.match(note ?? '', /^activation recomputation on: one row at seq-len 32 needs about .* keeping every block's activations, more than the .* budget/);
    } finally {
      await trainer.dispose();
    }
    await assert.rejects(InProcessTrainer.create(smallSetup({ modelDir: llama, data: 'task:arith?count=64&evalCount=16', ...setup, recompute: 'off', memoryBudgetBytes: budget }), await openModelSource(llama)), (err: unknown) => {
      assert.ok(err instanceof MemoryBudgetError);
      assert.match(err.message, /Activation recomputation is off \(--recompute off\); --recompute auto would turn it on here\.$/);
      return true;
    });
  });

  test('fedex train --recompute on: says so, and writes the adapter --recompute off writes; a bad mode names the choices', async () => {
    const common = ['train', '--data', 'task:arith?count=32&evalCount=4', '--steps', '2', '--batch-size', '4', '--seq-len', '32', '--threads', '1', '--seed', '1', '--eval-examples', '0'];
    const on = await cli(...common, '--recompute', 'on', '--out', join(tmp.path, 'on'));
    const off = await cli(...common, '--recompute', 'off', '--out', join(tmp.path, 'off'));
    const bad = await cli(...common, '--recompute', 'sometimes', '--out', join(tmp.path, 'bad'));

    assert.equal(on.code, 0, on.stderr);
    assert.equal(off.code, 0, off.stderr);
    assert.match(on.stderr, /activation recomputation on \(--recompute on\)/);
    assert.doesNotMatch(off.stderr, /recomputation/);
    const loss = (out: string): string => /train loss (\d+\.\d+)/.exec(out)?.[1] ?? 'none';
    assert.equal(loss(on.stdout), loss(off.stdout));
    const [a, b] = await Promise.all([readFile(join(tmp.path, 'on', 'adapter_model.safetensors')), readFile(join(tmp.path, 'off', 'adapter_model.safetensors'))]);
    assert.ok(a.equals(b), 'the two adapter files are byte for byte the same');
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--recompute.*auto\|on\|off|auto, on, off/);
  });
});
