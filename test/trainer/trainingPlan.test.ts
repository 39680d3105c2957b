// The memory plan without weights (src/trainer/trainingPlan.ts, `fedex train --plan`): on generated
// checkpoints it is the trainer's own plan; at real shapes (Llama-3.2-1B and Llama-3.1-8B configs,
// header-only safetensors: test/trainer/headerOnly.ts) its weights are counted by hand and a 24 GB
// GPU budget is planned without reading a weight.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { writeSyntheticCheckpoint } from '../../src/model/checkpoints/synthetic.js';
import { saveBpeTokenizer } from '../../src/trainer/data/bpeTrainer.js';
import { WEBGPU_FORM } from '../../src/trainer/deviceForm.js';
import { InProcessTrainer } from '../../src/trainer/inProcessTrainer.js';
import { openModelSource } from '../../src/trainer/modelFolder.js';
import type { MemoryProbe } from '../../src/trainer/memoryBudget.js';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import { planRows, planTraining, planVerdict } from '../../src/trainer/trainingPlan.js';
import type { PlanSetup, TrainingPlan } from '../../src/trainer/trainingPlan.js';
import type { TrainerSetup } from '../../src/trainer/types.js';
import { cli } from '../helpers/cliRun.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { taskTokenizerFiles } from './fixtures.js';
import { REAL_CONFIGS, writeHeaderOnlyCheckpoint } from './headerOnly.js';
import { SHIPPED_MODEL, smallSetup } from './setups.js';

/** A machine with 4 GB free, outside any cgroup: the default budget is 60 % of it. */
const PROBE: MemoryProbe = { freeBytes: () => 4e9, cgroup: () => undefined };

describe('planTraining (the memory plan without weights)', { timeout: 180_000 }, () => {
  const tmp = suiteTempDir('plan');

  // The trainer plans from the same graphs after loading everything; the plan must be its plan.
  const cases: { name: string; setup: () => Promise<TrainerSetup> }[] = [
    {
      name: 'shipped GPT-2, classification data, a budget that splits the batch',
      setup: async () => smallSetup({ modelDir: SHIPPED_MODEL, data: 'task:sentiment?count=32&evalCount=8', batchSize: 32, seqLen: 64, memoryBudgetBytes: 0.2e9 }),
    },
    {
      name: 'BF16 Llama, the WebGPU form (lowered graphs), gradient accumulation 2',
      setup: async () => {
        const dir = join(tmp.path, 'llama-bf16');
        const tokenizer = taskTokenizerFiles();
        await writeSyntheticCheckpoint(dir, { family: 'llama', layers: 2, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: tokenizer.vocabSize, positions: 64, seed: 3, dtype: 'BF16' });
        await saveBpeTokenizer(dir, tokenizer);
        return smallSetup({ modelDir: dir, data: 'task:arith?count=16&evalCount=4', batchSize: 4, seqLen: 32, gradAccumulation: 2, form: WEBGPU_FORM, lora: defaultLoraSettings({ r: 4, alpha: 8, dropout: 0.1 }) });
      },
    },
  ];
  for (const c of cases) {
    test(`${c.name}: the same estimate and micro-batches as the trainer`, async () => {
      const setup = await c.setup();

      const plan = await planTraining(setup, PROBE);
      const trainer = await InProcessTrainer.create(setup, await openModelSource(setup.modelDir), PROBE);
      const memory = trainer.info.memory;
      await trainer.dispose();

      assert.deepEqual(plan.estimate, memory.estimate);
      assert.deepEqual(plan.batches, { microBatchSize: memory.microBatchSize, splits: memory.splits, gradAccumulation: memory.gradAccumulation, evalBatchSize: memory.evalBatchSize, recompute: memory.recompute,
        ...(memory.note !== undefined ? { note: memory.note } : {}) });
      assert.equal(plan.modules, trainer.info.modules.length);
      assert.equal(plan.task, trainer.info.task);
      assert.equal(plan.taskFrom, 'data');
    });
  }

  test('weights by stored precision: BF16 on disk is half what the session holds in float32', async () => {
    const dir = join(tmp.path, 'llama-bf16');
    const plan = await planTraining({ ...smallSetup({ modelDir: dir }), data: undefined } as PlanSetup, PROBE);

    assert.equal(plan.storedWeights.length, 1);
    const [w] = plan.storedWeights;
    assert.equal(w.dtype, 'BF16');
    assert.equal(w.bytes, 2 * w.parameters);
    assert.equal(plan.estimate.inputParts.frozenBytes, 4 * w.parameters);
    assert.equal(plan.task, 'causal-lm');
    assert.equal(plan.taskFrom, 'architecture');
  });

  describe('real shapes, header-only checkpoints, a 24 GB GPU (--device webgpu --memory-budget 24)', () => {
    /** PEFT's default targets for Llama (q_proj, v_proj), r 16, 8 rows of 1024 tokens, AdamW, on a 24 GB GPU. */
    const realSetup = (modelDir: string): PlanSetup => ({
      modelDir,
      lora: defaultLoraSettings({ r: 16, alpha: 32 }),
      batchSize: 8,
      seqLen: 1024,
      seed: 1,
      optimizer: 'adamw',
      lr: 1e-4,
      maxGradNorm: 1,
      device: 'webgpu',
      memoryBudgetBytes: 24e9,
    });
    const plans = new Map<string, TrainingPlan>();
    let rssGrowth = 0;
    before(async () => {
      const rss = process.memoryUsage().rss;
      for (const [name, config] of Object.entries(REAL_CONFIGS)) {
        const dir = join(tmp.path, name);
        await writeHeaderOnlyCheckpoint(dir, config);
        plans.set(name, await planTraining(realSetup(dir), PROBE));
        rssGrowth = Math.max(rssGrowth, process.memoryUsage().rss - rss);
      }
    });

    test('Llama-3.2-1B: 1,235,814,400 BF16 parameters (2.47 GB; 4.94 GB held as float32), LoRA 1,703,936; fits as 8 micro-batches of 1', () => {
      const plan = plans.get('llama-3.2-1b')!;

      // embed 128256·2048 (tied head) + 16 layers × (q, o 2048² + k, v 512·2048 + 3 · 8192·2048 + 2 norms) + final norm.
      const parameters = 128256 * 2048 + 16 * (2 * 2048 * 2048 + 2 * 512 * 2048 + 3 * 8192 * 2048 + 2 * 2048) + 2048;
      assert.equal(parameters, 1_235_814_400);
      assert.deepEqual(plan.storedWeights, [{ dtype: 'BF16', parameters, bytes: 2 * parameters }]);
      assert.equal(plan.estimate.inputParts.frozenBytes, 4 * parameters);
      // r (in + out) per module: q 16·(2048 + 2048), v 16·(2048 + 512), 16 layers; AdamW m and v.
      assert.equal(plan.trainableParameters, 16 * 16 * (4096 + 2560));
      assert.equal(plan.estimate.inputParts.trainableBytes, 4 * plan.trainableParameters);
      assert.equal(plan.estimate.inputParts.optimizerBytes, 8 * plan.trainableParameters);
      assert.deepEqual(plan.batches, { microBatchSize: 1, splits: 8, gradAccumulation: 8, evalBatchSize: 1, recompute: false, note: plan.batches?.note });
      assert.ok(plan.estimate.totalBytes <= 24e9 && plan.estimate.totalBytes > 4 * parameters, `total ${plan.estimate.totalBytes}`);
      assert.match(planVerdict(plan), /fits when split: batch 8 does not fit the 24\.0 GB budget at seq-len 1024: running 8 micro-batches of 1 per step/);
    });

    test('Llama-3.1-8B: 8,030,261,248 BF16 parameters (16.06 GB; 32.12 GB as float32): does not fit 24 GB, and says so', () => {
      const plan = plans.get('llama-3.1-8b')!;

      const parameters = 2 * 128256 * 4096 + 32 * (2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 14336 * 4096 + 2 * 4096) + 4096;
      assert.equal(parameters, 8_030_261_248);
      assert.deepEqual(plan.storedWeights, [{ dtype: 'BF16', parameters, bytes: 2 * parameters }]);
      assert.equal(plan.estimate.inputParts.frozenBytes, 4 * parameters);
      assert.equal(plan.trainableParameters, 32 * 16 * (8192 + 5120));
      assert.equal(plan.batches, null);
      assert.equal(plan.estimate.microBatch, 1);
      // Recomputation (tried by the default --recompute auto) cannot help: the float32 weights alone exceed the budget.
      assert.match(plan.error ?? '', /one training step at batch 1, seq-len 1024, with activation recomputation, needs about \d+\.\d GB \(weights, adapter and optimizer state 32\.3 GB.* more than the memory budget of 24\.0 GB/);
      const rows = new Map(planRows(plan, 'adamw'));
      assert.equal(rows.get('frozen weights held in the session, fp32 (8.03 B parameters)'), '32.12 GB');
      assert.equal(rows.get('frozen weights on disk, BF16 (8.03 B parameters; not counted below)'), '16.06 GB');
    });

    test('Llama-3.1-8B with --base-precision int4: the matrices in 4-bit blocks of 64, 4.52 GB held instead of 32.12 GB', async () => {
      const plan = await planTraining({ ...realSetup(join(tmp.path, 'llama-3.1-8b')), basePrecision: 'int4' }, PROBE);
      // Norm weights (65 vectors of 4096) stay float32; every matrix's rows (4096, 14336) are whole blocks of 64.
      const vectors = 4096 * (2 * 32 + 1);
      const matrices = 8_030_261_248 - vectors;
      assert.deepEqual(plan.estimate.inputParts.frozenByPrecision, { fp32: 4 * vectors, int4: matrices / 2 + 4 * (matrices / 64) });
      assert.equal(plan.base.float32Matrices.blocks, 0);
      const rows = new Map(planRows(plan, 'adamw'));
      assert.equal(rows.get('frozen weights held in the session, int4 (8.03 B parameters)'), '4.52 GB');
    });

    test('Llama-3.1-8B, int4, 2048 tokens: fits 24 GB only with activation recomputation, which --recompute auto turns on', async () => {
      const setup = { ...realSetup(join(tmp.path, 'llama-3.1-8b')), basePrecision: 'int4' as const, seqLen: 2048 };
      const auto = await planTraining(setup, PROBE);
      const off = await planTraining({ ...setup, recompute: 'off' }, PROBE);

      assert.deepEqual(auto.batches, { microBatchSize: 1, splits: 8, gradAccumulation: 8, evalBatchSize: 1, recompute: true, note: auto.batches?.note });
      assert.ok(auto.recomputed && auto.estimate.totalBytes <= 24e9, `total ${auto.estimate.totalBytes}`);
      assert.match(planVerdict(auto), /^fits when split: activation recomputation on: one row at seq-len 2048 needs about 111\.\d GB keeping every block's activations/);
      assert.match(planRows(auto, 'adamw').map(([what]) => what).join('\n'), /training activations, peak \(1 rows × 2048 tokens, blocks recomputed in the backward\)/);
      assert.equal(off.batches, null);
      assert.equal(off.recomputed, false);
      assert.ok(off.estimate.trainBytes > 10 * auto.estimate.trainBytes, `one row: kept ${off.estimate.trainBytes}, recomputed ${auto.estimate.trainBytes}`);
      assert.match(off.error ?? '', /--recompute auto would turn it on here\.$/);
    });

    test('no weight was read: the process grew by far less than one float32 copy of the smaller model', () => {
      assert.ok(rssGrowth < 1.5e9, `RSS grew by ${(rssGrowth / 1e9).toFixed(2)} GB while planning (the 1B model alone is 4.9 GB as float32)`);
    });
  });

  test('fedex train --plan: a table, or JSON with --json; exit 1 when one row does not fit', async () => {
    const flags = ['train', '--plan', '--model', SHIPPED_MODEL, '--data', 'task:sentiment?count=16', '--batch-size', '16', '--seq-len', '64'];

    const table = await cli(...flags, '--memory-budget', '0.25');
    const json = await cli(...flags, '--memory-budget', '0.25', '--json');
    const tooSmall = await cli(...flags, '--memory-budget', '0.01');

    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /memory plan of .*tiny-gpt2 \(gpt2, sequence-classification\) on cpu; no weight was read/);
    assert.match(table.stdout, /frozen weights on disk, F32 .* 1\.6 MB/);
    assert.match(table.stdout, /optimizer state \(AdamW m and v\)/);
    assert.match(table.stdout, /^fits/m);
    const parsed = JSON.parse(json.stdout) as TrainingPlan;
    assert.equal(parsed.budget.bytes, 0.25e9);
    assert.equal(parsed.request.batchSize, 16);
    assert.ok(parsed.batches !== null && parsed.estimate.totalBytes <= 0.25e9);
    assert.equal(tooSmall.code, 1);
    assert.match(tooSmall.stdout, /does not fit: trainer: one training step at batch 1/);
  });
});
