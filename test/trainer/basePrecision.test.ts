// The trainer with its frozen base held in fp16, bf16 or int4 (src/trainer/frozenWeights.ts,
// src/model/basePrecision.ts) on the shipped GPT-2 (models/tiny-gpt2) and a small Llama-family
// checkpoint, 3 steps from the same start:
// - against a float32 run whose checkpoint was rounded (or block-quantised) to that precision on the
//   host beforehand: step losses and adapter equal to 1e-5 (measured: bit-identical), which shows the
//   widening in the graph adds nothing but the rounding;
// - against the float32 run on the original weights: the step losses within 2ρ (relative) and, with
//   SGD, the adapter's update within 40ρ (relative to the update's norm) for fp16 and bf16, where
//   ρ = ‖W − stored(W)‖/‖W‖ is the rounding the trainer reports (measured, both models, the loss:
//   ≤ 1.1ρ; the adapter: ≤ 24ρ; int4's ρ ≈ 0.1 makes an adapter bound meaningless, its loss is
//   held to 2ρ and the rest to the pre-rounded run).
// Plus: a BF16 checkpoint trained in bf16 is fed as stored (no weight read as float32) and equals
// the fp32 run on the same checkpoint; base overrides need float32 bases; and the memory estimate
// counts the frozen bytes in each precision exactly.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fromStored, toStored, type BasePrecision } from '../../src/model/basePrecision.js';
import { writeSyntheticCheckpoint } from '../../src/model/checkpoints/synthetic.js';
import { saveBpeTokenizer } from '../../src/trainer/data/bpeTrainer.js';
import { InProcessTrainer } from '../../src/trainer/inProcessTrainer.js';
import { openModelSource } from '../../src/trainer/modelFolder.js';
import type { ModelSource } from '../../src/trainer/modelSource.js';
import type { AdapterTensors, TrainerSetup } from '../../src/trainer/types.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { taskTokenizerFiles } from './fixtures.js';
import { smallSetup, SHIPPED_MODEL } from './setups.js';

const STEPS = 3;
const PRE_ROUNDED_TOL = 1e-5;
const LOSS_RHO = 2;
const ADAPTER_RHO = 40;

interface Run {
  readonly losses: number[];
  readonly start: Float32Array;
  readonly end: Float32Array;
  readonly trainer: InProcessTrainer;
}

function flat(a: AdapterTensors): Float32Array {
  return Float32Array.from([...a.modules.keys()].sort().flatMap((k) => [...a.modules.get(k)!.a.data, ...a.modules.get(k)!.b.data]));
}

function norm(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

function maxDiff(a: readonly number[] | Float32Array, b: readonly number[] | Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The folder's source with every matrix replaced by the values `precision` stores it as (rounded on the host). */
function preRounded(source: ModelSource, precision: BasePrecision): ModelSource {
  return {
    ...source,
    readStored: undefined,
    readFloat32: async (key) => {
      const w = await source.readFloat32(key);
      const shape = source.tensors.get(key)!;
      return shape.length < 2 ? w : fromStored(toStored(w, shape, precision, key), shape);
    },
  };
}

async function train(model: string, overrides: Partial<TrainerSetup>, wrap: (s: ModelSource) => ModelSource = (s) => s): Promise<Run> {
  const setup = smallSetup({ modelDir: model, data: 'task:arith?count=64&evalCount=16', ...overrides });
  const trainer = await InProcessTrainer.create(setup, wrap(await openModelSource(model)));
  const start = trainer.initialAdapter(1);
  const losses: number[] = [];
  const out = await trainer.train({ adapter: start }, { steps: STEPS }, { onProgress: (p) => losses.push(p.loss) });
  return { losses, start: flat(start), end: flat(out.adapter), trainer };
}

describe('trainer: frozen base weights below float32', () => {
  const trainers: InProcessTrainer[] = [];
  after(async () => {
    for (const t of trainers) await t.dispose();
  });
  const tmp = suiteTempDir('base-precision');
  let llama: string;
  let llamaBf16: string;
  const keep = (r: Run): Run => {
    trainers.push(r.trainer);
    return r;
  };

  before(async () => {
    const tokenizer = taskTokenizerFiles();
    const spec = { family: 'llama', layers: 2, hidden: 32, heads: 2, kvHeads: 1, intermediate: 64, vocab: tokenizer.vocabSize, positions: 64, seed: 3 } as const;
    llama = join(tmp.path, 'llama');
    llamaBf16 = join(tmp.path, 'llama-bf16');
    await writeSyntheticCheckpoint(llama, spec);
    await writeSyntheticCheckpoint(llamaBf16, { ...spec, dtype: 'BF16' });
    for (const dir of [llama, llamaBf16]) await saveBpeTokenizer(dir, tokenizer);
  });

  for (const [name, model] of [['GPT-2 (models/tiny-gpt2)', (): string => SHIPPED_MODEL], ['Llama (2 layers, GQA, 7 projections)', (): string => llama]] as const) {
    for (const precision of ['fp16', 'bf16', 'int4'] as const) {
      test(`${name}, ${precision}: equals the float32 run on pre-rounded weights; within the rounding of the float32 run`, async () => {
        const targets = { lora: { ...smallSetup().lora, targetModules: [] } };
        const held = keep(await train(model(), { ...targets, basePrecision: precision }));
        const pre = keep(await train(model(), targets, (s) => preRounded(s, precision)));
        assert.ok(maxDiff(held.losses, pre.losses) <= PRE_ROUNDED_TOL, `losses ${held.losses.join(', ')} vs pre-rounded ${pre.losses.join(', ')}`);
        assert.ok(maxDiff(held.end, pre.end) <= PRE_ROUNDED_TOL, `adapter differs from the pre-rounded run by ${maxDiff(held.end, pre.end)}`);

        const rho = held.trainer.info.base.relativeRounding;
        assert.ok(rho !== null && rho > 0, `the trainer reports the rounding it applied (${String(rho)})`);
        const sgd = { ...targets, optimizer: 'sgd' as const, lr: 0.5 };
        const fp32 = keep(await train(model(), sgd));
        const low = keep(await train(model(), { ...sgd, basePrecision: precision }));
        const lossRel = Math.max(...low.losses.map((l, i) => Math.abs(l - fp32.losses[i]) / Math.abs(fp32.losses[i])));
        assert.ok(lossRel <= LOSS_RHO * rho, `step losses differ by ${lossRel.toExponential(2)} (relative), more than ${LOSS_RHO}ρ = ${(LOSS_RHO * rho).toExponential(2)}`);
        assert.ok(lossRel > 0, 'the rounding changes the losses');
        if (precision !== 'int4') {
          const adapterRel = norm(low.end, fp32.end) / norm(fp32.end, fp32.start);
          assert.ok(adapterRel <= ADAPTER_RHO * rho, `adapter update differs by ${adapterRel.toExponential(2)} of its norm, more than ${ADAPTER_RHO}ρ = ${(ADAPTER_RHO * rho).toExponential(2)}`);
        }
      });
    }
  }

  test('a BF16 checkpoint held in bf16 is fed as stored (no matrix read as float32) and trains as the fp32 run on it', async () => {
    const reads: string[] = [];
    const counting = (s: ModelSource): ModelSource => ({ ...s, readFloat32: async (key) => {
      if (s.tensors.get(key)!.length >= 2) reads.push(key);
      return s.readFloat32(key);
    } });
    const held = keep(await train(llamaBf16, { basePrecision: 'bf16' }, counting));
    assert.deepEqual(reads, []);
    assert.equal(held.trainer.info.base.relativeRounding, 0, 'nothing was rounded');
    const fp32 = keep(await train(llamaBf16, {}));
    assert.ok(maxDiff(held.losses, fp32.losses) <= PRE_ROUNDED_TOL && maxDiff(held.end, fp32.end) <= PRE_ROUNDED_TOL, `bf16 losses ${held.losses.join(', ')} vs fp32 ${fp32.losses.join(', ')}`);
  });

  test('base overrides replace float32 bases only: refused for a base held in bf16, accepted with float32AdaptedBases', async () => {
    const held = keep(await train(SHIPPED_MODEL, { basePrecision: 'bf16' }));
    const m = held.trainer.modules[0];
    const w0 = new Float32Array(m.inFeatures * m.outFeatures).fill(0.01);
    const adapter = held.trainer.initialAdapter(1);
    await assert.rejects(held.trainer.train({ adapter, baseOverrides: new Map([[m.path, w0]]) }, { steps: 1 }), new RegExp(`base of module '${m.path.replace(/\./g, '\\.')}', which is held in bf16 .*float32AdaptedBases`));

    const kept = keep(await train(SHIPPED_MODEL, { basePrecision: 'bf16', float32AdaptedBases: true }));
    const { base } = kept.trainer.info;
    assert.equal(base.float32Matrices.kept, kept.trainer.modules.length);
    const fp32 = keep(await train(SHIPPED_MODEL, {}));
    const withBase = await kept.trainer.evaluate({ adapter, baseOverrides: new Map([[m.path, w0]]) }, { exactMatch: false });
    const plain = await kept.trainer.evaluate({ adapter }, { exactMatch: false });
    assert.notEqual(withBase.loss, plain.loss, 'the override reaches the session');
    assert.ok(fp32.trainer.info.base.held.bf16 === undefined);
  });

  test('the memory estimate holds the frozen bytes of each precision, exactly', async () => {
    const source = await openModelSource(llama);
    try {
      const shapes = [...source.tensors.values()];
      const matrices = shapes.filter((s) => s.length === 2).reduce((n, s) => n + s[0] * s[1], 0);
      const vectors = shapes.filter((s) => s.length < 2).reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
      // int4: half a byte a weight, and a float32 scale per block of 64 (rows of 64 or more: down_proj) or 32 (rows of 32).
      const int4 = shapes.filter((s) => s.length === 2).reduce((n, [r, c]) => n + (r * c) / 2 + 4 * ((r * c) / (c % 64 === 0 ? 64 : 32)), 0);
      assert.ok(shapes.some(([, c]) => c === 64) && shapes.some(([, c]) => c === 32), 'both block sizes occur');
      const bytes: Record<BasePrecision, number> = { fp32: 4 * matrices, fp16: 2 * matrices, bf16: 2 * matrices, int4 };
      for (const precision of ['fp32', 'fp16', 'bf16', 'int4'] as const) {
        const trainer = await InProcessTrainer.create(smallSetup({ modelDir: llama, data: 'task:arith?count=16&evalCount=8', basePrecision: precision }), await openModelSource(llama));
        trainers.push(trainer);
        const parts = trainer.info.memory.estimate.inputParts;
        if (precision === 'fp32') {
          assert.deepEqual(parts.frozenByPrecision, { fp32: 4 * (matrices + vectors) });
        } else {
          assert.deepEqual(parts.frozenByPrecision, { fp32: 4 * vectors, [precision]: bytes[precision] });
          assert.equal(trainer.info.base.held[precision]!.bytes, bytes[precision]);
        }
        assert.equal(parts.frozenBytes, 4 * vectors + (precision === 'fp32' ? 4 * matrices : bytes[precision]));
      }
    } finally {
      await source.close();
    }
  });
});
