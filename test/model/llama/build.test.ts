// The Llama-family graph against an independent float64 reference (reference.ts): logits and loss
// with non-zero LoRA factors, grouped-query attention, RoPE, padding, Qwen2 biases and tied
// embeddings, Mistral's sliding window, seeded LoRA dropout; a finite-difference gradient check of
// the whole tiny model; and the ModelGraph bookkeeping (modules, trainable, frozen) and errors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { grad } from '../../../src/graph/autodiff.js';
import { dropoutKeepMask } from '../../helpers/dropoutMask.js';
import { ropeFrequencies } from '../../../src/model/llama/ropeScaling.js';
import { buildLlama, llamaModulePaths, type LlamaBuildOptions } from '../../../src/model/llama/build.js';
import { llamaArchitecture } from '../../../src/model/llama/architecture.js';
import { phi3Architecture } from '../../../src/model/phi3/architecture.js';
import { architectureFor } from '../../../src/model/registry.js';
import type { LoraSettings, ModelGraph } from '../../../src/model/types.js';
import { F64, assertClose, gradCheck, runGraph } from '../../graph/gradCheck.js';
import { loraSettings, modelFeeds, randomFactors, runModel, uniform } from './harness.js';
import { rawConfig, refConfig, withDefaults, type Variant } from './configs.js';
import { llamaReference, type RefLora } from './reference.js';

const ALL_PROJ = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** The checkpoint's tensors, written out by hand from HF's Llama state dict, filled with seeded random values. */
function checkpoint(variant: Variant = {}, seed = 1): Map<string, { shape: number[]; data: Float64Array }> {
  const v = withDefaults(variant);
  const kv = v.kvHeads * 4;
  const out = new Map<string, { shape: number[]; data: Float64Array }>();
  let s = seed * 1000;
  const put = (key: string, shape: number[], lo = -0.5, hi = 0.5): void => {
    out.set(key, { shape, data: uniform(shape.reduce((a, b) => a * b, 1), s++, lo, hi) });
  };
  put('model.embed_tokens.weight', [40, 16], -1, 1);
  for (let l = 0; l < v.layers; l++) {
    const p = `model.layers.${l}`;
    put(`${p}.input_layernorm.weight`, [16], 0.8, 1.2);
    put(`${p}.self_attn.q_proj.weight`, [16, 16]);
    put(`${p}.self_attn.k_proj.weight`, [kv, 16]);
    put(`${p}.self_attn.v_proj.weight`, [kv, 16]);
    if (v.modelType === 'qwen2') {
      put(`${p}.self_attn.q_proj.bias`, [16]);
      put(`${p}.self_attn.k_proj.bias`, [kv]);
      put(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    put(`${p}.self_attn.o_proj.weight`, [16, 16]);
    put(`${p}.post_attention_layernorm.weight`, [16], 0.8, 1.2);
    put(`${p}.mlp.gate_proj.weight`, [24, 16]);
    put(`${p}.mlp.up_proj.weight`, [24, 16]);
    put(`${p}.mlp.down_proj.weight`, [16, 24]);
  }
  put('model.norm.weight', [16], 0.8, 1.2);
  if (v.tie !== true) put('lm_head.weight', [40, 16]);
  return out;
}

function build(v: Variant, lora: LoraSettings, extra: Partial<LlamaBuildOptions> = {}): { model: ModelGraph; weights: Map<string, Float64Array> } {
  const ckpt = checkpoint(v);
  const model = buildLlama({
    config: rawConfig(v),
    tensors: new Map([...ckpt].map(([k, t]) => [k, t.shape])),
    lora,
    task: 'causal-lm',
    training: false,
    dtype: 'float64',
    ...extra,
  });
  return { model, weights: new Map([...ckpt].map(([k, t]) => [k, t.data])) };
}

const IDS = [[3, 17, 29, 5, 11, 38], [7, 0, 22, 31, 2, 2]];
const MASK = [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]];
const LABELS = [[3, 17, 29, 5, 11, 38], [7, 0, 22, 31, -100, -100]];

async function compare(v: Variant, lora: LoraSettings, tol: { rtol: number; atol: number }, extra: Partial<LlamaBuildOptions> = {}): Promise<ModelGraph> {
  const { model, weights } = build(v, lora, extra);
  const factors = randomFactors(model, lora.r, 50);
  const got = await runModel(model, { values: new Map([...weights, ...factors.byInput]), ids: IDS, mask: MASK, labels: LABELS });
  const scaling = lora.useRslora ? lora.alpha / Math.sqrt(lora.r) : lora.alpha / lora.r;
  const ref = llamaReference(refConfig(v), weights, { r: lora.r, scaling, factors: factors.byPath }, IDS, MASK, LABELS);
  assertClose(got.logits, ref.logits, tol.rtol, tol.atol, 'logits');
  assertClose([got.loss], [ref.loss], tol.rtol, tol.atol, 'loss');
  return model;
}

// Float64 graphs agree with the float64 reference to round-off: rtol 1e-9, atol 1e-10.
const EXACT = { rtol: 1e-9, atol: 1e-10 };

describe('llama forward vs the float64 reference (B = 2, T = 6, hidden 16, 4 heads)', () => {
  test('GQA (2 kv heads), LoRA on all seven projections, float64 graph: logits and loss to 1e-9', async () => {
    const model = await compare({}, loraSettings({ targetModules: ALL_PROJ }), EXACT);
    assert.equal(model.modules.length, 14);
  });

  test("float32 graph with a symbolic sequence length (the trainer's graph): rtol 1e-4, atol 1e-5", async () => {
    await compare({}, loraSettings({ targetModules: ALL_PROJ, alpha: 8, useRslora: true }), { rtol: 1e-4, atol: 1e-5 }, { dtype: 'float32', seqLen: undefined });
  });

  test('multi-head (kv = heads) and multi-query (kv = 1) attention', async () => {
    await compare({ kvHeads: 4 }, loraSettings(), EXACT, { seqLen: 6 });
    await compare({ kvHeads: 1 }, loraSettings(), EXACT, { seqLen: 6 });
  });

  test('qwen2: q/k/v biases and tied lm_head (no lm_head tensor)', async () => {
    const model = await compare({ modelType: 'qwen2', tie: true }, loraSettings({ targetModules: ['q_proj', 'k_proj', 'lm_head'] }), EXACT);
    assert.ok(model.frozen.some((f) => f.key === 'model.layers.0.self_attn.k_proj.bias'));
    assert.equal(model.modules.find((m) => m.path === 'lm_head')?.baseKey, 'model.embed_tokens.weight');
  });

  test('mistral: sliding window 3 < T hides keys more than 2 positions back', async () => {
    await compare({ modelType: 'mistral', window: 3 }, loraSettings(), EXACT);
  });

  test("left padding and pad token values do not change the real tokens' logits (RoPE is relative)", async () => {
    const lora = loraSettings({ targetModules: ALL_PROJ });
    const { model, weights } = build({}, lora);
    const values = new Map([...weights, ...randomFactors(model, 2, 9).byInput]);
    const real = [12, 4, 33, 8];
    const plain = await runModel(model, { values, ids: [real], mask: [[1, 1, 1, 1]], labels: [real] });
    // The last pad position would predict the first real token, which the unpadded run cannot: ignored.
    const labels = [[-100, -100, -100, ...real.slice(1)]];
    const padded = await runModel(model, { values, ids: [[9, 9, ...real]], mask: [[0, 0, 1, 1, 1, 1]], labels });
    const repadded = await runModel(model, { values, ids: [[0, 39, ...real]], mask: [[0, 0, 1, 1, 1, 1]], labels });
    assertClose(padded.logits.slice(2 * 40), plain.logits, 1e-9, 1e-10, 'left-padded rows');
    assertClose(repadded.logits.slice(2 * 40), plain.logits, 1e-9, 1e-10, 'other pad tokens');
    assertClose([padded.loss], [plain.loss], 1e-9, 1e-10, 'loss');
  });

  test('LoRA dropout in training: the seeded mask of each module, as dropoutKeepMask recomputes it', async () => {
    const lora = loraSettings({ targetModules: ['q_proj', 'v_proj', 'down_proj'], dropout: 0.3 });
    const { model, weights } = build({}, lora, { training: true });
    const factors = randomFactors(model, 2, 21);
    const seed = 12345n;
    const got = await runModel(model, { values: new Map([...weights, ...factors.byInput]), ids: IDS, mask: MASK, labels: LABELS, seed });
    const keep = new Map(model.modules.map((m, i) => [m.path, dropoutKeepMask(seed, i + 1, 12, m.inFeatures, 0.3)]));
    const refLora: RefLora = { r: 2, scaling: 2, factors: factors.byPath, dropout: { rate: 0.3, keep } };
    const ref = llamaReference(refConfig(), weights, refLora, IDS, MASK, LABELS);
    assertClose(got.logits, ref.logits, 1e-9, 1e-10, 'logits with dropout');
    const noDrop = llamaReference(refConfig(), weights, { r: 2, scaling: 2, factors: factors.byPath }, IDS, MASK, LABELS);
    assert.ok(Math.abs(noDrop.loss - ref.loss) > 1e-6, 'dropout changes the loss');
  });
});

describe('llama gradients (float64 graph, central differences eps 1e-6, rtol 1e-5, atol 1e-8)', () => {
  test('d loss / d A and d B of every adapted module (q, v of both layers, GQA)', async () => {
    const { model, weights } = build({}, loraSettings());
    const feeds = modelFeeds(model, { values: new Map([...weights, ...randomFactors(model, 2, 77).byInput]), ids: IDS, mask: MASK, labels: LABELS });
    assert.equal(model.trainable.length, 8);
    await gradCheck(model.graph, model.loss, feeds, model.trainable, { ...F64, maxCoords: 12 });
  });
});

describe('llama float32 training graph', () => {
  test("float32 gradients (the trainer's graph) agree with the float64 graph's: rtol 1e-3, atol 1e-5", async () => {
    const lora = loraSettings({ targetModules: ALL_PROJ });
    const grads: number[][][] = [];
    for (const dtype of ['float64', 'float32'] as const) {
      const { model, weights } = build({}, lora, { dtype });
      const feeds = modelFeeds(model, { values: new Map([...weights, ...randomFactors(model, 2, 31).byInput]), ids: IDS, mask: MASK, labels: LABELS });
      const ds = grad(model.loss, model.trainable);
      const out = await runGraph(model.graph, feeds, Object.fromEntries(ds.map((dv, i) => [`d${i}`, dv])));
      grads.push(ds.map((_, i) => out[`d${i}`].data));
    }
    grads[0].forEach((g64, i) => assertClose(grads[1][i], g64, 1e-3, 1e-5, `gradient ${i}`));
  });

  test('attention_dropout in training: seeded, deterministic per seed, off in evaluation', async () => {
    const ckpt = checkpoint();
    const tensors = new Map([...ckpt].map(([k, t]) => [k, t.shape]));
    const config = { ...rawConfig(), attention_dropout: 0.5 };
    const train = buildLlama({ config, tensors, lora: loraSettings(), task: 'causal-lm', training: true });
    const evalModel = buildLlama({ config, tensors, lora: loraSettings(), task: 'causal-lm', training: false });
    assert.ok(train.dropoutSeed !== undefined);
    assert.equal(evalModel.dropoutSeed, undefined);
    const values = new Map([...[...ckpt].map(([k, t]) => [k, t.data] as const), ...randomFactors(train, 2, 3).byInput]);
    const run = async (m: ModelGraph, seed: bigint): Promise<number> => (await runModel(m, { values, ids: IDS, mask: MASK, labels: LABELS, seed })).loss;
    const [a, b, c, e] = [await run(train, 1n), await run(train, 1n), await run(train, 2n), await run(evalModel, 0n)];
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.notEqual(a, e);
  });
});

describe('llama config', () => {
  test('RoPE frequencies: 1/θ^(2i/d); llama3 scaling keeps high frequencies, divides low ones by the factor, blends between', () => {
    const inv = (params: Record<string, unknown> | undefined, dim: number, theta: number): Float64Array => ropeFrequencies({ ...(params !== undefined ? { params } : {}), theta, maxPositions: 4096 }, dim).invFreq;
    const plain = inv(undefined, 8, 10000);
    assertClose(plain, [1, 0.1, 0.01, 0.001], 1e-12, 0, 'default');
    const scaled = inv({ rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 1024 }, 8, 10000);
    // Wavelengths 2π/f: 6.3 and 63 are below 1024/4 (kept), 6283 is above 1024/1 (÷ 8), 628 lies between.
    const smooth = (1024 / (2 * Math.PI / 0.01) - 1) / 3;
    assertClose(scaled, [1, 0.1, (1 - smooth) * 0.01 / 8 + smooth * 0.01, 0.001 / 8], 1e-12, 0, 'llama3');
    assertClose(inv({ type: 'linear', factor: 4 }, 4, 100), [0.25, 0.025], 1e-12, 0, 'linear');
    assert.throws(() => inv({ rope_type: 'proportional', factor: 4 }, 4, 100), /'proportional' is not supported \(supported: default, linear, llama3, dynamic, yarn, longrope\)/);
  });
});

describe('llama ModelGraph bookkeeping', () => {
  test('modules, trainable order and frozen inputs (every checkpoint tensor, by its key)', () => {
    const { model } = build({}, loraSettings());
    assert.deepEqual(model.modules.map((m) => m.path), ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj']);
    const v0 = model.modules[1];
    assert.deepEqual({ ...v0 }, { path: 'model.layers.0.self_attn.v_proj', baseKey: 'model.layers.0.self_attn.v_proj.weight', layout: 'linear', inFeatures: 16, outFeatures: 8, aInput: 'model.layers.0.self_attn.v_proj.lora_A',
      bInput: 'model.layers.0.self_attn.v_proj.lora_B' });
    assert.deepEqual(model.trainable.map((t) => t.name), model.modules.flatMap((m) => [m.aInput, m.bInput]));
    assert.deepEqual(model.frozen.map((f) => f.key).sort(), [...checkpoint().keys()].sort());
    assert.ok(model.frozen.every((f) => f.input === f.key));
    assert.deepEqual(model.logits.shape, ['batch', 'seq', 40]);
  });

  test('freezeA keeps A out of trainable; modules_to_save trains lm_head in full', () => {
    const { model } = build({}, loraSettings({ freezeA: true, modulesToSave: ['lm_head'] }));
    assert.deepEqual(model.trainable.map((t) => t.name), [...model.modules.map((m) => m.bInput), 'lm_head.weight']);
    assert.ok(!model.frozen.some((f) => f.key === 'lm_head.weight'));
  });

  test('trainAll: every checkpoint tensor trainable (fullTrainable names its key), no adapters, no frozen inputs, no LoRA dropout', () => {
    const { model } = build({}, loraSettings({ dropout: 0.1 }), { trainAll: true, training: true });
    assert.equal(model.modules.length, 0);
    assert.equal(model.frozen.length, 0);
    assert.equal(model.dropoutSeed, undefined);
    assert.deepEqual(model.trainable.map((t) => t.name).sort(), [...checkpoint().keys()].sort());
    assert.deepEqual(model.fullTrainable?.map((f) => f.input), model.trainable.map((t) => t.name));
    assert.ok(model.fullTrainable?.every((f) => f.key === f.name));
  });

  test('trainAll with a symbolic seq: the gradient of every tensor builds and runs (finite, the right shapes)', async () => {
    const { model, weights } = build({ tie: true }, loraSettings(), { trainAll: true, dtype: 'float32' });
    const ds = grad(model.loss, model.trainable);
    const out = await runGraph(model.graph, modelFeeds(model, { values: weights, ids: IDS, mask: MASK, labels: LABELS }), Object.fromEntries(ds.map((dv, i) => [`d${i}`, dv])));
    model.trainable.forEach((t, i) => {
      assert.deepEqual(out[`d${i}`].dims, t.shape, t.name);
      assert.ok(out[`d${i}`].data.every(Number.isFinite), t.name);
    });
  });

  test('a bare LlamaModel checkpoint (keys without model.) is found; PEFT paths keep the prefix', () => {
    const ckpt = checkpoint();
    const tensors = new Map([...ckpt].map(([k, t]) => [k.replace(/^model\./, ''), t.shape]));
    const model = buildLlama({ config: rawConfig(), tensors, lora: loraSettings(), task: 'causal-lm', training: false });
    assert.equal(model.modules[0].path, 'model.layers.0.self_attn.q_proj');
    assert.equal(model.modules[0].baseKey, 'layers.0.self_attn.q_proj.weight');
    const norm = model.frozen.find((f) => f.input === 'model.norm.weight');
    assert.equal(norm?.key, 'norm.weight');
  });

  test('errors name the target, tensor or shape', () => {
    const tensors = new Map([...checkpoint()].map(([k, t]) => [k, t.shape]));
    const opts = { config: rawConfig(), tensors, task: 'causal-lm' as const, training: false };
    assert.throws(() => buildLlama({ ...opts, lora: loraSettings({ targetModules: ['c_attn'] }) }), (e: Error & { code?: string }) => e.code === 'TARGET_NOT_FOUND' && /q_proj/.test(e.message));
    const missing = new Map(tensors);
    missing.delete('model.layers.1.mlp.up_proj.weight');
    assert.throws(() => buildLlama({ ...opts, tensors: missing, lora: loraSettings() }), (e: Error & { code?: string }) => e.code === 'TENSOR_NOT_FOUND' && e.message.includes('model.layers.1.mlp.up_proj.weight'));
    const wrong = new Map(tensors).set('model.layers.0.self_attn.k_proj.weight', [16, 16]);
    assert.throws(() => buildLlama({ ...opts, tensors: wrong, lora: loraSettings() }), (e: Error & { code?: string }) => e.code === 'TENSOR_SHAPE_MISMATCH' && e.message.includes('[8, 16]'));
    assert.throws(() => buildLlama({ ...opts, lora: loraSettings({ modulesToSave: ['classifier'] }) }), (e: Error & { code?: string }) => e.code === 'MODULE_TO_SAVE_NOT_FOUND');
    assert.throws(() => buildLlama({ ...opts, task: 'sequence-classification', lora: loraSettings() }), (e: Error & { code?: string }) => e.code === 'UNSUPPORTED_OPTION');
  });

  test('architecture: model types, PEFT default targets, module paths', () => {
    assert.deepEqual([...llamaArchitecture.modelTypes], ['llama', 'mistral', 'qwen2', 'qwen3']);
    assert.deepEqual([...llamaArchitecture.defaultTargetModules], ['q_proj', 'v_proj']);
    assert.equal(llamaModulePaths(1).length, 8);
    assert.deepEqual(llamaModulePaths(1, true), ['model.layers.0.self_attn.qkv_proj', 'model.layers.0.self_attn.o_proj', 'model.layers.0.mlp.gate_up_proj', 'model.layers.0.mlp.down_proj', 'lm_head']);
    for (const t of ['llama', 'mistral', 'qwen2', 'qwen3']) assert.equal(architectureFor({ model_type: t }), llamaArchitecture, t);
    // PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING['phi3'].
    assert.equal(architectureFor({ model_type: 'phi3' }), phi3Architecture);
    assert.deepEqual([...phi3Architecture.defaultTargetModules], ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj']);
  });
});
