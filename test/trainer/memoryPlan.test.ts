// Batch sizes that fit the memory budget: the estimate of src/trainer/memoryPlan.ts on the tiny test
// model against a count by hand, its growth with batch and sequence, the split of a batch into
// micro-batches when it does not fit (with the same adapter as the unsplit run), the error when one
// row does not fit, the default budget, and the seqLen limit of the model's position table.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTrainer } from '../../src/trainer/loraTrainer.js';
import { InProcessTrainer } from '../../src/trainer/inProcessTrainer.js';
import { memoryBudget, readCgroupMemory } from '../../src/trainer/memoryBudget.js';
import type { MemoryProbe } from '../../src/trainer/memoryBudget.js';
import { MemoryBudgetError, planBatches, RUNTIME_OVERHEAD_BYTES, StepMemoryModel } from '../../src/trainer/memoryPlan.js';
import type { MemoryEstimate } from '../../src/trainer/memoryPlan.js';
import { openModelSource } from '../../src/trainer/modelFolder.js';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import type { AdapterTensors, LoraTrainer, TrainerSetup } from '../../src/trainer/types.js';
import { tinySource } from './fixtures.js';
import { maxAdapterDiff, SHIPPED_MODEL, smallSetup } from './setups.js';

const D = 8;
const H = 12;
const R = 4;

/** The tiny model's estimates for causal LM with LoRA r 4 on fc and out, AdamW, clipping. */
function tinyMemory(): { model: StepMemoryModel; vocab: number } {
  const source = tinySource({ D, H });
  const lora = defaultLoraSettings({ r: R, alpha: 8, targetModules: ['fc', 'out'] });
  const build = (training: boolean): ReturnType<typeof source.architecture.build> => source.architecture.build({ config: source.config, tensors: source.tensors, lora, task: 'causal-lm', training });
  const model = new StepMemoryModel(build(true), build(false), { optimizer: { kind: 'adamw', weightDecay: 0 }, maxGradNorm: 1 });
  return { model, vocab: source.config.vocab_size as number };
}

/** An estimate that is `perRow` bytes per row plus `fixed`. */
function linearEstimate(perRow: number, fixed: number) {
  return (micro: number, evalBatch: number, accumulate: boolean): MemoryEstimate => ({
    microBatch: micro,
    seqLen: 64,
    evalBatch,
    inputBytes: fixed,
    inputParts: { frozenBytes: fixed, frozenByPrecision: { fp32: fixed }, trainableBytes: 0, optimizerBytes: 0, otherBytes: 0 },
    trainBytes: perRow * micro,
    evalBytes: 0,
    hostBytes: accumulate ? 1 : 0,
    runtimeBytes: 0,
    totalBytes: fixed + perRow * micro + (accumulate ? 1 : 0),
  });
}

async function trainThreeSteps(setup: TrainerSetup): Promise<{ trainer: InProcessTrainer; start: AdapterTensors; end: AdapterTensors; losses: number[] }> {
  const trainer = await InProcessTrainer.create(setup, tinySource({ D, H }));
  const start = trainer.initialAdapter(2);
  const losses: number[] = [];
  const outcome = await trainer.train({ adapter: start }, { steps: 3 }, { onProgress: (p) => losses.push(p.loss) });
  return { trainer, start, end: outcome.adapter, losses };
}

describe('memory estimate', () => {
  test("the fixed part is the count by hand of the step's inputs; activations are 2–6 × the logits and grow linearly in batch × seq", () => {
    const { model, vocab: V } = tinyMemory();

    const e = model.estimate(8, 32, 8, false);

    // wte [V, D], fc [D, H], out [D, H]; A and B of both modules (r·(D+H) floats each) with AdamW m and v;
    // lr and step; input_ids and labels int64 [8, 32] (this LM loss never reads the attention mask).
    const byHand = 4 * (V * D + 2 * D * H) + 4 * 3 * 2 * R * (D + H) + 2 * 4 + 2 * 8 * 8 * 32;
    assert.equal(e.inputBytes, byHand);
    assert.deepEqual(e.inputParts, { frozenBytes: 4 * (V * D + 2 * D * H), frozenByPrecision: { fp32: 4 * (V * D + 2 * D * H) }, trainableBytes: 4 * 2 * R * (D + H), optimizerBytes: 4 * 2 * 2 * R * (D + H),
      otherBytes: 2 * 4 + 2 * 8 * 8 * 32 });
    // The cross-entropy backward holds at least the logits and their gradient, [8, 32, V] float32 each.
    const logits = 4 * 8 * 32 * V;
    assert.ok(e.trainBytes >= 2 * logits && e.trainBytes <= 6 * logits, `train ${e.trainBytes} vs logits ${logits}`);
    assert.ok(e.evalBytes >= logits && e.evalBytes < e.trainBytes, `eval ${e.evalBytes}`);
    assert.equal(e.runtimeBytes, RUNTIME_OVERHEAD_BYTES);
    assert.equal(e.totalBytes, e.inputBytes + e.trainBytes + e.evalBytes + e.runtimeBytes);
    // No attention in this model: every activation is proportional to batch × seq.
    const t = (b: number, s: number): number => model.estimate(b, s, b, false).trainBytes;
    assert.equal(t(16, 32) - t(8, 32), t(24, 32) - t(16, 32));
    assert.equal(t(8, 64), t(16, 32));
    assert.ok(t(16, 32) > 1.99 * t(8, 32));
    // Accumulation adds the host's gradient buffers: 2 × the trainable bytes.
    assert.equal(model.estimate(8, 32, 8, true).hostBytes, 2 * 4 * 2 * R * (D + H));
  });

  test('on GPT-2 (attention) doubling seq more than doubles the activations; doubling the batch doubles them', async () => {
    const source = await openModelSource(SHIPPED_MODEL);
    try {
      const lora = defaultLoraSettings({ r: 8, alpha: 16, targetModules: ['c_attn'] });
      const build = (training: boolean): ReturnType<typeof source.architecture.build> => source.architecture.build({ config: source.config, tensors: source.tensors, lora, task: 'causal-lm', training });
      const model = new StepMemoryModel(build(true), build(false), { optimizer: { kind: 'adamw' } });
      const t = (b: number, s: number): number => model.estimate(b, s, b, false).trainBytes;

      assert.ok(t(8, 128) > 2.05 * t(8, 64), `seq 64 → 128: ${t(8, 64)} → ${t(8, 128)}`);
      assert.ok(Math.abs(t(16, 64) / t(8, 64) - 2) < 0.01, `batch 8 → 16: ${t(8, 64)} → ${t(16, 64)}`);
    } finally {
      await source.close();
    }
  });
});

describe('planBatches', () => {
  const budget = { bytes: 1e9, source: 'test' };

  test('a batch that fits runs whole', () => {
    const plan = planBatches({ batchSize: 8, gradAccumulation: 2, seqLen: 64 }, budget, linearEstimate(1e8, 1e8));

    assert.deepEqual([plan.microBatchSize, plan.splits, plan.gradAccumulation, plan.evalBatchSize, plan.note], [8, 1, 2, 8, undefined]);
  });

  test('a batch that does not fit is split into equal micro-batches and accumulation raised by as much', () => {
    // 10⁸ + 10⁸·m (+1 when accumulating) ≤ 10⁹: m ≤ 8, so 64 rows run as 8 × 8.
    const plan = planBatches({ batchSize: 64, gradAccumulation: 1, seqLen: 512 }, budget, linearEstimate(1e8, 1e8));

    assert.deepEqual([plan.microBatchSize, plan.splits, plan.gradAccumulation, plan.evalBatchSize], [8, 8, 8, 8]);
    assert.equal(plan.note, 'batch 64 does not fit the 1.0 GB budget at seq-len 512: running 8 micro-batches of 8 per step');
    // 10 rows, at most 8 fit: 2 micro-batches of 5 rather than 8 + 2; with gradAccumulation 3, 6 per step.
    const uneven = planBatches({ batchSize: 10, gradAccumulation: 3, seqLen: 64, evalBatchSize: 4 }, budget, linearEstimate(1e8, 1e8));
    assert.deepEqual([uneven.microBatchSize, uneven.splits, uneven.gradAccumulation, uneven.evalBatchSize], [5, 2, 6, 4]);
    assert.match(uneven.note ?? '', /running 6 micro-batches of 5 per step \(3 batches of 10, each in 2\)$/);
    const ragged = planBatches({ batchSize: 11, gradAccumulation: 1, seqLen: 64 }, budget, linearEstimate(1e8, 1e8));
    assert.match(ragged.note ?? '', /running 2 micro-batches of up to 6 per step$/);
  });

  test('when one row does not fit: an error with the estimate, the budget and what to change', () => {
    assert.throws(() => planBatches({ batchSize: 4, gradAccumulation: 1, seqLen: 4096 }, { bytes: 2e9, source: 'as set' }, linearEstimate(3e9, 1e8)), (err: unknown) => {
      assert.ok(err instanceof MemoryBudgetError);
      assert.equal(err.code, 'MEMORY_BUDGET');
      assert.match(err.message, /one training step at batch 1, seq-len 4096 needs about 3\.1 GB .* more than the memory budget of 2\.0 GB \(as set\)/);
      assert.match(err.message, /--seq-len/);
      assert.match(err.message, /--memory-budget/);
      assert.match(err.message, /--batch-size does not help/);
      return true;
    });
  });
});

describe('memory budget', () => {
  const probe = (free: number, cgroup?: { limit: number; usage: number }): MemoryProbe => ({ freeBytes: () => free, cgroup: () => cgroup });

  test('default: 60 % of the free memory, or of what the container has left when that is less; a given budget wins', () => {
    assert.deepEqual(memoryBudget(undefined, 'cpu', probe(10e9)), { bytes: 6e9, source: '60 % of the 10.0 GB of memory available' });
    assert.deepEqual(memoryBudget(undefined, 'cpu', probe(10e9, { limit: 4e9, usage: 1e9 })).bytes, 1.8e9);
    assert.match(memoryBudget(undefined, 'cpu', probe(10e9, { limit: 4e9, usage: 1e9 })).source, /left under this container's memory limit/);
    assert.match(memoryBudget(undefined, 'cuda', probe(10e9)).source, /no portable query of cuda memory/);
    assert.equal(memoryBudget(5e8, 'cuda', probe(10e9)).bytes, 5e8);
  });

  test('cgroup v2 and v1 files; no limit is no cgroup', () => {
    const files = (map: Record<string, string>) => (path: string): string => {
      if (!(path in map)) throw new Error('ENOENT');
      return map[path];
    };
    assert.deepEqual(readCgroupMemory(files({ '/sys/fs/cgroup/memory.max': '4000\n', '/sys/fs/cgroup/memory.current': '1000\n' })), { limit: 4000, usage: 1000 });
    assert.equal(readCgroupMemory(files({ '/sys/fs/cgroup/memory.max': 'max\n', '/sys/fs/cgroup/memory.current': '1000\n' })), undefined);
    assert.deepEqual(readCgroupMemory(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '8000', '/sys/fs/cgroup/memory/memory.usage_in_bytes': '500' })), { limit: 8000, usage: 500 });
    assert.equal(readCgroupMemory(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712', '/sys/fs/cgroup/memory/memory.usage_in_bytes': '500' })), undefined);
    assert.equal(readCgroupMemory(files({})), undefined);
  });
});

describe('the trainer under a memory budget', () => {
  const common = { data: 'task:arith?count=64&evalCount=4', seqLen: 96, optimizer: 'sgd' as const, lr: 0.5, maxGradNorm: 0.5, seed: 3, batchSize: 32 };

  test('a budget that fits 8 rows but not 32 runs batch 32 as 4 micro-batches of 8: same adapter within float32 round-off, reported', async () => {
    const sgd = { optimizer: { kind: 'sgd' as const, weightDecay: 0 }, maxGradNorm: 0.5 };
    const source = tinySource({ D, H });
    const lora = { ...smallSetup().lora, targetModules: ['fc', 'out'] };
    const build = (training: boolean): ReturnType<typeof source.architecture.build> => source.architecture.build({ config: source.config, tensors: source.tensors, lora, task: 'causal-lm', training });
    // What the trainer's plan computes at 8 rows (accumulating, evaluating 8): 9 rows need more.
    const budget = new StepMemoryModel(build(true), build(false), sgd).estimate(8, 96, 8, true).totalBytes;

    const whole = await trainThreeSteps(smallSetup(common));
    const split = await trainThreeSteps(smallSetup({ ...common, memoryBudgetBytes: budget }));

    try {
      assert.deepEqual([whole.trainer.info.memory.splits, whole.trainer.info.memory.gradAccumulation], [1, 1]);
      const plan = split.trainer.info.memory;
      assert.deepEqual([plan.microBatchSize, plan.splits, plan.gradAccumulation, plan.evalBatchSize, plan.budget.bytes], [8, 4, 4, 8, budget]);
      assert.match(plan.note ?? '', /^batch 32 does not fit the \d+ MB budget at seq-len 96: running 4 micro-batches of 8 per step$/);
      assert.ok(plan.estimate.totalBytes <= budget && whole.trainer.info.memory.estimate.totalBytes > budget);
      // Not bit-identical: the split step sums four mean gradients on the host, weighted by their
      // loss tokens, where the whole step reduces over 32 rows inside onnxruntime.
      const moved = maxAdapterDiff(whole.start, whole.end);
      assert.ok(moved > 1e-2, `training moved the adapter by ${moved}`);
      const diff = maxAdapterDiff(whole.end, split.end);
      assert.ok(diff < 1e-4 * moved, `adapters differ by ${diff} (moved ${moved})`);
      whole.losses.forEach((l, i) => assert.ok(Math.abs(l - split.losses[i]) < 1e-5, `step ${i + 1} loss ${l} vs ${split.losses[i]}`));
    } finally {
      await whole.trainer.dispose();
      await split.trainer.dispose();
    }
  });

  test('the default budget comes from the probe; a budget below one row fails before training with the figures', async () => {
    const probe: MemoryProbe = { freeBytes: () => 5e9, cgroup: () => undefined };
    const trainer = await InProcessTrainer.create(smallSetup(common), tinySource({ D, H }), probe);
    try {
      assert.deepEqual(trainer.info.memory.budget, { bytes: 3e9, source: '60 % of the 5.0 GB of memory available' });
    } finally {
      await trainer.dispose();
    }

    await assert.rejects(InProcessTrainer.create(smallSetup({ ...common, memoryBudgetBytes: 1e8 }), tinySource({ D, H })), (err: unknown) => {
      assert.ok(err instanceof MemoryBudgetError);
      assert.match(err.message,
        /^trainer: one training step at batch 1, seq-len 96 needs about \d+ MB \(.*runtime 168 MB\), more than the memory budget of 100 MB \(as set by --memory-budget \/ memoryBudgetBytes\)\. Lower the sequence length \(--seq-len, seqLen\)/);
      return true;
    });
    await assert.rejects(InProcessTrainer.create(smallSetup({ memoryBudgetBytes: 0 }), tinySource()), /memoryBudgetBytes must be a number of bytes > 0, got 0/);
  });

  test("a seqLen beyond the model's positions is refused before anything loads", async () => {
    let trainer: LoraTrainer | null = null;
    await assert.rejects(async () => {
      trainer = await createTrainer(smallSetup({ modelDir: SHIPPED_MODEL, seqLen: 256 }), { worker: false });
    }, /seqLen 256 is longer than the model takes: .*tiny-gpt2 has n_positions = 128 in config\.json; lower --seq-len \(seqLen\) to 128 or less/);
    assert.equal(trainer, null);
  });
});
