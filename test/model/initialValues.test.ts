// From a checkpoint folder to training: load, pick the architecture, build, feed the frozen
// weights and the trainable values the trainer starts from (its LoRA init and savedInitialValue),
// run AdamW steps through onnxruntime.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { join } from 'node:path';
import { toOnnxBytes } from '../../src/graph/emit.js';
import { buildTrainStep } from '../../src/graph/trainStep.js';
import { withCheckpoint, type Checkpoint } from '../../src/model/checkpoint.js';
import { writeRandomGpt2Checkpoint } from '../../src/model/checkpoints/tinyGpt2.js';
import { initAdaptedModules } from '../../src/model/loraInit.js';
import { architectureFor } from '../../src/model/registry.js';
import type { LoraSettings, ModelGraph } from '../../src/model/types.js';
import { createSession, type OrtTensor, ortTensor, runSession } from '../../src/runtime/session.js';
import { savedInitialValue } from '../../src/trainer/initialValues.js';
import { suiteTempDir } from '../helpers/tempDir.js';

const tmp = suiteTempDir('initial-values');
let dir: string;
before(async () => {
  dir = join(tmp.path, 'model');
  await writeRandomGpt2Checkpoint(dir, { vocabSize: 40, nEmbd: 16, nLayer: 2, nHead: 2, nPositions: 8, seed: 1, dropout: 0 });
});

const LORA: LoraSettings = { r: 4, alpha: 8, useRslora: false, dropout: 0.05, targetModules: ['c_attn', 'c_proj'], freezeA: false, modulesToSave: [] };

/** Every frozen input's data as float32, read from the checkpoint one tensor at a time (what the trainer feeds at basePrecision fp32). */
async function readFrozenInputs(model: ModelGraph, ckpt: Checkpoint): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const f of model.frozen) out.set(f.input, await ckpt.readFloat32(f.key));
  return out;
}

/**
 * The values the trainer starts a model's trainable inputs from, by graph input name: the LoRA
 * factors of `initAdaptedModules` (its `initialAdapter`) and each full trainable tensor's
 * `savedInitialValue` (its `loadSavedInit`).
 */
async function startingValues(model: ModelGraph, lora: LoraSettings, seed: number, ckpt: Checkpoint): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  const factors = initAdaptedModules(model.modules, lora, seed);
  for (const m of model.modules) {
    out.set(m.aInput, factors.get(m.path)!.a.data);
    out.set(m.bInput, factors.get(m.path)!.b.data);
  }
  for (const f of model.fullTrainable ?? []) out.set(f.input, await savedInitialValue(f, seed, { name: dir, readFloat32: (key) => ckpt.readFloat32(key) }));
  return out;
}

describe('initial values and a training run from a checkpoint folder', () => {
  test('LoRA starts as a no-op (B = 0, A uniform in ±1/√in), frozen inputs come from the checkpoint', async () => {
    await withCheckpoint(dir, async (ckpt) => {
      const model = architectureFor(ckpt.config).build({ config: ckpt.config, tensors: ckpt.tensors, lora: LORA, task: 'causal-lm', training: false });
      const frozen = await readFrozenInputs(model, ckpt);
      assert.equal(frozen.size, model.frozen.length);
      assert.deepEqual(frozen.get('transformer.wte.weight'), await ckpt.readFloat32('wte.weight'));
      const values = await startingValues(model, LORA, 3, ckpt);
      assert.equal(values.size, model.trainable.length);
      for (const m of model.modules) {
        assert.ok(values.get(m.bInput)!.every((v) => v === 0));
        assert.ok(values.get(m.aInput)!.every((v) => Math.abs(v) <= 1 / Math.sqrt(m.inFeatures)));
      }
      // The same seed gives the same A whatever order the modules come in (every client starts alike).
      const reversed = initAdaptedModules([...model.modules].reverse(), LORA, 3);
      assert.deepEqual(values.get('transformer.h.0.attn.c_attn.lora_A'), reversed.get('transformer.h.0.attn.c_attn')!.a.data);
    });
  });

  test('a new classification head starts N(0, 0.02²) and is trainable', async () => {
    await withCheckpoint(dir, async (ckpt) => {
      const cls = architectureFor(ckpt.config).build({ config: { ...ckpt.config, num_labels: 2 }, tensors: ckpt.tensors, lora: LORA, task: 'sequence-classification', training: true });
      assert.equal(cls.trainable.at(-1)?.name, 'score.weight');
      const score = (await startingValues(cls, LORA, 3, ckpt)).get('score.weight')!;
      const rms = Math.sqrt(score.reduce((s, v) => s + v * v, 0) / score.length);
      assert.ok(rms > 0.01 && rms < 0.03, `score init rms ${rms}`);
    });
  });

  test('AdamW steps on a fixed batch lower the LM loss: LoRA (with lora_dropout) and trainAll (with model dropout)', async () => {
    await withCheckpoint(dir, async (ckpt) => {
      const lora = await train(ckpt, false, 20, 5e-2);
      assert.ok(Math.abs(lora[0] - Math.log(40)) < 0.1, `initial loss ${lora[0]} should be near ln 40 for a fresh model`);
      // A fresh model's tied wte (std 0.02) bounds how far LoRA alone can move the logits: a modest drop.
      assert.ok(lora[19] < lora[0] - 0.05, `LoRA: loss went from ${lora[0]} to ${lora[19]}`);
      const full = await train(ckpt, true, 20, 1e-2);
      assert.ok(full[19] < full[0] - 1, `trainAll: loss went from ${full[0]} to ${full[19]}`);
    });
  });
});

async function train(ckpt: Checkpoint, trainAll: boolean, steps: number, lr: number): Promise<number[]> {
  const config = { ...ckpt.config, embd_pdrop: 0.1, attn_pdrop: 0.1, resid_pdrop: 0.1 };
  const lora = { ...LORA, dropout: trainAll ? 0 : 0.05 };
  const model = architectureFor(config).build({ config: trainAll ? config : ckpt.config, tensors: ckpt.tensors, lora, task: 'causal-lm', training: true, trainAll });
  assert.ok(model.dropoutSeed !== undefined);
  const step = buildTrainStep({ loss: model.loss, params: model.trainable, optimizer: { kind: 'adamw', weightDecay: 0 }, maxGradNorm: 1 });
  const session = await createSession(toOnnxBytes(model.graph, { outputs: step.outputs }), { intraOpThreads: 1 });
  const [B, T] = [2, 8];
  const ids = BigInt64Array.from({ length: B * T }, (_, i) => BigInt((i * 7) % 40));
  const feeds: Record<string, OrtTensor> = {
    input_ids: ortTensor('int64', ids, [B, T]),
    attention_mask: ortTensor('int64', new BigInt64Array(B * T).fill(1n), [B, T]),
    labels: ortTensor('int64', ids, [B, T]),
    lr: ortTensor('float32', Float32Array.of(lr), []),
  };
  for (const [name, data] of await readFrozenInputs(model, ckpt)) feeds[name] = ortTensor('float32', data, model.frozen.find((f) => f.input === name)!.shape);
  const params = await startingValues(model, lora, 3, ckpt);
  const state = new Map<string, { m: Float32Array; v: Float32Array }>(model.trainable.map((p) => [p.name, { m: new Float32Array(params.get(p.name)!.length), v: new Float32Array(params.get(p.name)!.length) }]));
  const losses: number[] = [];
  for (let s = 1; s <= steps; s++) {
    feeds.step = ortTensor('float32', Float32Array.of(s), []);
    feeds.dropout_seed = ortTensor('int64', BigInt64Array.of(BigInt(s)), []);
    for (const p of model.trainable) {
      const dims = p.shape as number[];
      feeds[p.name] = ortTensor('float32', params.get(p.name)!, dims);
      feeds[`${p.name}.m`] = ortTensor('float32', state.get(p.name)!.m, dims);
      feeds[`${p.name}.v`] = ortTensor('float32', state.get(p.name)!.v, dims);
    }
    const out = await runSession(session, feeds);
    losses.push(Number((out.loss.data as Float32Array)[0]));
    for (const p of model.trainable) {
      params.set(p.name, out[`${p.name}.next`].data as Float32Array);
      state.set(p.name, { m: out[`${p.name}.m.next`].data as Float32Array, v: out[`${p.name}.v.next`].data as Float32Array });
    }
  }
  return losses;
}
