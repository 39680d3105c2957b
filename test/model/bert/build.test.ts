// BERT and RoBERTa sequence classifiers against an independent float64 reference (reference.ts):
// logits and loss with non-zero LoRA factors (float64 graphs with gelu_new; float32 graphs with
// BERT's erf GELU, which onnxruntime's CPU runs in float32 only), RoBERTa's position offset, padding,
// LoRA dropout, gradients (float64 finite differences, and float32 gradients against finite
// differences of the reference), the head as modules_to_save, and the ModelGraph bookkeeping.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { grad } from '../../../src/graph/autodiff.js';
import { dropoutKeepMask } from '../../helpers/dropoutMask.js';
import { bertArchitecture } from '../../../src/model/bert/architecture.js';
import { architectureFor } from '../../../src/model/registry.js';
import { buildBert, type BertBuildOptions } from '../../../src/model/bert/build.js';
import type { LoraSettings, ModelGraph } from '../../../src/model/types.js';
import { F64, assertClose, gradCheck, runGraph } from '../../graph/gradCheck.js';
import { loraSettings as anyLora, modelFeeds, randomFactors, runModel, uniform } from '../llama/harness.js';
import { bertReference, erfRef, positionIds, type RefBertConfig } from './reference.js';
import { ModelError } from '../../../src/model/errors.js';

type Prefix = 'bert' | 'roberta';

interface Variant {
  readonly prefix: Prefix;
  readonly act?: 'gelu' | 'gelu_new';
  /** Write the classifier head into the checkpoint (default true). */
  readonly head?: boolean;
  readonly pooler?: boolean;
}

const PAD = 1;

/** Test LoRA settings, targeting query and value unless told otherwise. */
function loraSettings(overrides: Partial<LoraSettings> = {}): LoraSettings {
  return anyLora({ targetModules: ['query', 'value'], ...overrides });
}

function rawConfig(v: Variant): Record<string, unknown> {
  return {
    model_type: v.prefix,
    hidden_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    intermediate_size: 24,
    vocab_size: 40,
    max_position_embeddings: 16,
    type_vocab_size: v.prefix === 'bert' ? 2 : 1,
    layer_norm_eps: v.prefix === 'bert' ? 1e-12 : 1e-5,
    hidden_act: v.act ?? 'gelu_new',
    hidden_dropout_prob: 0,
    attention_probs_dropout_prob: 0,
    pad_token_id: v.prefix === 'bert' ? 0 : PAD,
    id2label: { 0: 'neg', 1: 'neutral', 2: 'pos' },
  };
}

function refConfig(v: Variant): RefBertConfig {
  return { prefix: v.prefix, hidden: 16, layers: 2, heads: 4, intermediate: 24, eps: v.prefix === 'bert' ? 1e-12 : 1e-5, numLabels: 3, pad: PAD, gelu: v.act === 'gelu' ? 'erf' : 'tanh' };
}

/** The state dict of BertForSequenceClassification / RobertaForSequenceClassification, written out by hand, seeded random values. */
function checkpoint(v: Variant): Map<string, { shape: number[]; data: Float64Array }> {
  const out = new Map<string, { shape: number[]; data: Float64Array }>();
  let s = 5000;
  const put = (key: string, shape: number[], lo = -0.5, hi = 0.5): void => {
    out.set(key, { shape, data: uniform(shape.reduce((a, b) => a * b, 1), s++, lo, hi) });
  };
  const norm = (key: string): void => {
    put(`${key}.weight`, [16], 0.8, 1.2);
    put(`${key}.bias`, [16], -0.1, 0.1);
  };
  const dense = (key: string, outF: number, inF: number): void => {
    put(`${key}.weight`, [outF, inF]);
    put(`${key}.bias`, [outF], -0.1, 0.1);
  };
  const p = v.prefix;
  put(`${p}.embeddings.word_embeddings.weight`, [40, 16], -1, 1);
  put(`${p}.embeddings.position_embeddings.weight`, [16, 16], -1, 1);
  put(`${p}.embeddings.token_type_embeddings.weight`, [p === 'bert' ? 2 : 1, 16], -1, 1);
  norm(`${p}.embeddings.LayerNorm`);
  for (const l of [0, 1]) {
    const e = `${p}.encoder.layer.${l}`;
    for (const m of ['query', 'key', 'value']) dense(`${e}.attention.self.${m}`, 16, 16);
    dense(`${e}.attention.output.dense`, 16, 16);
    norm(`${e}.attention.output.LayerNorm`);
    dense(`${e}.intermediate.dense`, 24, 16);
    dense(`${e}.output.dense`, 16, 24);
    norm(`${e}.output.LayerNorm`);
  }
  if (p === 'bert' && v.pooler !== false) dense('bert.pooler.dense', 16, 16);
  if (v.head !== false) {
    if (p === 'bert') dense('classifier', 3, 16);
    else {
      dense('classifier.dense', 16, 16);
      dense('classifier.out_proj', 3, 16);
    }
  }
  return out;
}

function build(v: Variant, lora: LoraSettings, extra: Partial<BertBuildOptions> = {}): { model: ModelGraph; weights: Map<string, Float64Array> } {
  const ckpt = checkpoint(v);
  const model = buildBert({
    config: rawConfig(v),
    tensors: new Map([...ckpt].map(([k, t]) => [k, t.shape])),
    lora,
    task: 'sequence-classification',
    training: false,
    dtype: v.act === 'gelu' ? 'float32' : 'float64',
    ...extra,
  });
  return { model, weights: new Map([...ckpt].map(([k, t]) => [k, t.data])) };
}

const DATA: Record<Prefix, { ids: number[][]; mask: number[][] }> = {
  bert: { ids: [[2, 17, 29, 5, 11, 3], [2, 8, 22, 31, 0, 0]], mask: [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]] },
  roberta: { ids: [[0, 17, 29, 5, 11, 2], [0, 8, 22, 2, PAD, PAD]], mask: [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]] },
};
const LABELS = [2, 0];
const ENCODER = ['query', 'key', 'value', 'dense'];
const EXACT = { rtol: 1e-9, atol: 1e-10 };
const FLOAT32 = { rtol: 1e-4, atol: 2e-5 };

async function compare(v: Variant, lora: LoraSettings, tol: { rtol: number; atol: number }): Promise<ModelGraph> {
  const { model, weights } = build(v, lora);
  const factors = randomFactors(model, lora.r, 60);
  const { ids, mask } = DATA[v.prefix];
  const got = await runModel(model, { values: new Map([...weights, ...factors.byInput]), ids, mask, labels: LABELS });
  const ref = bertReference(refConfig(v), weights, { r: lora.r, scaling: lora.alpha / lora.r, factors: factors.byPath }, ids, mask, LABELS);
  assertClose(got.logits, ref.logits, tol.rtol, tol.atol, 'logits');
  assertClose([got.loss], [ref.loss], tol.rtol, tol.atol, 'loss');
  return model;
}

describe('bert/roberta forward vs the float64 reference (B = 2, T = 6, hidden 16, 4 heads, 3 labels)', () => {
  test('reference erf is accurate (erf(0.5), erf(-1), erf(2.5), erf(3.5)) to 1e-14', () => {
    assertClose([0.5, -1, 2.5, 3.5].map(erfRef), [0.5204998778130465, -0.8427007929497149, 0.999593047982555, 0.9999992569016276], 1e-14, 1e-15, 'erf');
  });

  for (const prefix of ['bert', 'roberta'] as const) {
    test(`${prefix}, float64 graph (gelu_new): LoRA on query/key/value/dense, logits and loss to 1e-9`, async () => {
      const model = await compare({ prefix }, loraSettings({ targetModules: ENCODER }), EXACT);
      assert.equal(model.modules.length, prefix === 'bert' ? 13 : 12);
    });

    test(`${prefix}, float32 graph with the erf GELU and a symbolic seq: rtol 1e-4, atol 2e-5`, async () => {
      await compare({ prefix, act: 'gelu' }, loraSettings({ targetModules: ENCODER, alpha: 3 }), FLOAT32);
    });

    test(`${prefix}: padding (any pad ids) leaves the example's logits as without it`, async () => {
      const { model, weights } = build({ prefix }, loraSettings());
      const values = new Map([...weights, ...randomFactors(model, 2, 8).byInput]);
      const real = prefix === 'bert' ? [2, 12, 33, 3] : [0, 12, 33, 2];
      const pad = prefix === 'bert' ? 0 : PAD;
      const plain = await runModel(model, { values, ids: [real], mask: [[1, 1, 1, 1]], labels: [1] });
      const padded = await runModel(model, { values, ids: [[...real, pad, pad]], mask: [[1, 1, 1, 1, 0, 0]], labels: [1] });
      assertClose(padded.logits, plain.logits, 1e-9, 1e-10, 'padded logits');
      if (prefix === 'bert') {
        const other = await runModel(model, { values, ids: [[...real, 17, 39]], mask: [[1, 1, 1, 1, 0, 0]], labels: [1] });
        assertClose(other.logits, plain.logits, 1e-9, 1e-10, 'other pad ids');
      }
    });
  }

  test('roberta positions start at padding_idx + 1, padding keeps padding_idx (BERT-style positions would differ)', async () => {
    assert.deepEqual(positionIds('roberta', [0, 8, 22, 2, PAD, PAD], PAD), [2, 3, 4, 5, 1, 1]);
    const v: Variant = { prefix: 'roberta' };
    const { model, weights } = build(v, loraSettings());
    const factors = randomFactors(model, 2, 4);
    const { ids, mask } = DATA.roberta;
    const got = await runModel(model, { values: new Map([...weights, ...factors.byInput]), ids, mask, labels: LABELS });
    const lora = { r: 2, scaling: 2, factors: factors.byPath };
    assertClose(got.logits, bertReference(refConfig(v), weights, lora, ids, mask, LABELS).logits, 1e-9, 1e-10, 'logits');
    const unshifted = bertReference(refConfig(v), weights, lora, ids, mask, LABELS, (row) => row.map((_, t) => t)).logits;
    assert.ok(got.logits.some((x, i) => Math.abs(x - unshifted[i]) > 1e-3), 'positions without the offset give other logits');
  });

  test('LoRA dropout in training (model dropouts 0): the seeded masks of dropoutKeepMask, pooler included', async () => {
    const v: Variant = { prefix: 'bert' };
    const lora = loraSettings({ targetModules: ['query', 'dense'], dropout: 0.25 });
    const { model, weights } = build(v, lora, { training: true });
    const factors = randomFactors(model, 2, 13);
    const { ids, mask } = DATA.bert;
    const seed = 99n;
    const got = await runModel(model, { values: new Map([...weights, ...factors.byInput]), ids, mask, labels: LABELS, seed });
    const keep = new Map(model.modules.map((m, i) => [m.path, dropoutKeepMask(seed, i + 1, m.path === 'bert.pooler.dense' ? 2 : 12, m.inFeatures, 0.25)]));
    const ref = bertReference(refConfig(v), weights, { r: 2, scaling: 2, factors: factors.byPath, dropout: { rate: 0.25, keep } }, ids, mask, LABELS);
    assertClose(got.logits, ref.logits, 1e-9, 1e-10, 'logits with LoRA dropout');
  });

  test('model dropouts in training: one seed input, deterministic per seed, none in evaluation', async () => {
    const ckpt = checkpoint({ prefix: 'roberta' });
    const tensors = new Map([...ckpt].map(([k, t]) => [k, t.shape]));
    const config = { ...rawConfig({ prefix: 'roberta' }), hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 };
    const opts = { config, tensors, lora: loraSettings(), task: 'sequence-classification' as const, dtype: 'float64' as const };
    const train = buildBert({ ...opts, training: true });
    const evalModel = buildBert({ ...opts, training: false });
    assert.ok(train.dropoutSeed !== undefined);
    assert.equal(evalModel.dropoutSeed, undefined);
    const values = new Map([...[...ckpt].map(([k, t]) => [k, t.data] as const), ...randomFactors(train, 2, 3).byInput]);
    const run = async (m: ModelGraph, seed: bigint): Promise<number> => (await runModel(m, { values, ...DATA.roberta, labels: LABELS, seed })).loss;
    const [a, b, c, e] = [await run(train, 5n), await run(train, 5n), await run(train, 6n), await run(evalModel, 0n)];
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.notEqual(a, e);
  });
});

describe('bert/roberta gradients', () => {
  for (const prefix of ['bert', 'roberta'] as const) {
    test(`${prefix}, float64 graph: central differences (eps 1e-6, rtol 1e-5, atol 1e-8) for LoRA A, B and the classifier head`, async () => {
      const { model, weights } = build({ prefix }, loraSettings());
      const feeds = modelFeeds(model, { values: new Map([...weights, ...randomFactors(model, 2, 71).byInput]), ...DATA[prefix], labels: LABELS });
      const head = prefix === 'bert' ? ['classifier.weight', 'classifier.bias'] : ['classifier.dense.weight', 'classifier.dense.bias', 'classifier.out_proj.weight', 'classifier.out_proj.bias'];
      assert.deepEqual(model.trainable.map((t) => t.name), [...model.modules.flatMap((m) => [m.aInput, m.bInput]), ...head]);
      await gradCheck(model.graph, model.loss, feeds, model.trainable, { ...F64, maxCoords: 10 });
    });
  }

  test('bert, float32 graph with the erf GELU: gradients match central differences of the float64 reference (eps 1e-5; rtol 2e-3, atol 2e-5)', async () => {
    const v: Variant = { prefix: 'bert', act: 'gelu' };
    const lora = loraSettings({ targetModules: ['query', 'value', 'dense'] });
    const { model, weights } = build(v, lora);
    const factors = randomFactors(model, 2, 17);
    const values = new Map([...weights, ...factors.byInput]);
    const { ids, mask } = DATA.bert;
    const ds = grad(model.loss, model.trainable);
    const out = await runGraph(model.graph, modelFeeds(model, { values, ids, mask, labels: LABELS }), Object.fromEntries(ds.map((dv, i) => [`d${i}`, dv])));
    const refLoss = (): number => bertReference(refConfig(v), weights, { r: 2, scaling: 2, factors: factors.byPath }, ids, mask, LABELS).loss;
    const eps = 1e-5;
    model.trainable.forEach((param, i) => {
      const data = values.get(param.name)!;
      for (let k = 0; k < 6; k++) {
        const c = Math.floor((k * data.length) / 6);
        const x = data[c];
        data[c] = x + eps;
        const up = refLoss();
        data[c] = x - eps;
        const down = refLoss();
        data[c] = x;
        const numeric = (up - down) / (2 * eps);
        const analytic = out[`d${i}`].data[c];
        assert.ok(Math.abs(analytic - numeric) <= 2e-5 + 2e-3 * Math.abs(numeric), `d loss / d ${param.name}[${c}]: graph ${analytic}, reference ${numeric}`);
      }
    });
  });
});

describe('bert/roberta ModelGraph bookkeeping', () => {
  test('PEFT paths with the bert. prefix, frozen encoder, head in fullTrainable from the checkpoint', () => {
    const { model } = build({ prefix: 'bert' }, loraSettings({ targetModules: bertArchitecture.defaultTargetModules }));
    assert.deepEqual(model.modules.map((m) => m.path), ['bert.encoder.layer.0.attention.self.query', 'bert.encoder.layer.0.attention.self.value', 'bert.encoder.layer.1.attention.self.query', 'bert.encoder.layer.1.attention.self.value']);
    assert.equal(model.modules[0].baseKey, 'bert.encoder.layer.0.attention.self.query.weight');
    assert.deepEqual(model.fullTrainable?.map((f) => [f.input, f.key]), [['classifier.weight', 'classifier.weight'], ['classifier.bias', 'classifier.bias']]);
    const all = [...checkpoint({ prefix: 'bert' }).keys()].filter((k) => !k.startsWith('classifier'));
    assert.deepEqual(model.frozen.map((f) => f.key).sort(), all.sort());
    assert.deepEqual(model.logits.shape, ['batch', 3]);
    assert.deepEqual(model.labels.shape, ['batch']);
  });

  test('a base checkpoint (BertModel keys, no head) resolves; the head is new (initializer_range), the pooler kept frozen', () => {
    const ckpt = checkpoint({ prefix: 'bert', head: false });
    const tensors = new Map([...ckpt].map(([k, t]) => [k.replace(/^bert\./, ''), t.shape]));
    const model = buildBert({ config: rawConfig({ prefix: 'bert' }), tensors, lora: loraSettings({ targetModules: ['query', 'value'] }), task: 'sequence-classification', training: false });
    assert.equal(model.modules[0].baseKey, 'encoder.layer.0.attention.self.query.weight');
    assert.deepEqual(model.fullTrainable?.map((f) => [f.input, f.key, f.initStd]), [['classifier.weight', undefined, 0.02], ['classifier.bias', undefined, 0]]);
    assert.equal(model.frozen.find((f) => f.input === 'bert.pooler.dense.weight')?.key, 'pooler.dense.weight');
  });

  test('no pooler in the checkpoint: a new, trained pooler; roberta: four head tensors', () => {
    const { model } = build({ prefix: 'bert', pooler: false, head: false }, loraSettings());
    assert.deepEqual(model.fullTrainable?.map((f) => f.input), ['bert.pooler.dense.weight', 'bert.pooler.dense.bias', 'classifier.weight', 'classifier.bias']);
    const rob = build({ prefix: 'roberta' }, loraSettings({ freezeA: true })).model;
    assert.deepEqual(rob.trainable.map((t) => t.name), [...rob.modules.map((m) => m.bInput), 'classifier.dense.weight', 'classifier.dense.bias', 'classifier.out_proj.weight', 'classifier.out_proj.bias']);
  });

  test('trainAll: every tensor trainable, no adapters', () => {
    const { model } = build({ prefix: 'roberta' }, loraSettings(), { trainAll: true });
    assert.equal(model.modules.length, 0);
    assert.equal(model.frozen.length, 0);
    assert.deepEqual(model.trainable.map((t) => t.name).sort(), [...checkpoint({ prefix: 'roberta' }).keys()].sort());
  });

  for (const prefix of ['bert', 'roberta'] as const) {
    test(`${prefix} trainAll with a symbolic seq: the gradient of every tensor builds and runs (finite, the right shapes)`, async () => {
      const { model, weights } = build({ prefix, act: 'gelu' }, loraSettings(), { trainAll: true });
      const ds = grad(model.loss, model.trainable);
      const out = await runGraph(model.graph, modelFeeds(model, { values: weights, ...DATA[prefix], labels: LABELS }), Object.fromEntries(ds.map((dv, i) => [`d${i}`, dv])));
      model.trainable.forEach((t, i) => {
        assert.deepEqual(out[`d${i}`].dims, t.shape, t.name);
        assert.ok(out[`d${i}`].data.every(Number.isFinite), t.name);
      });
    });
  }

  test('errors: task, regression, activation, targets', () => {
    const tensors = new Map([...checkpoint({ prefix: 'bert' })].map(([k, t]) => [k, t.shape]));
    const base = { tensors, lora: loraSettings(), task: 'sequence-classification' as const, training: false };
    const code = (c: string) => (e: Error & { code?: string }): boolean => e.code === c;
    assert.throws(() => buildBert({ ...base, config: rawConfig({ prefix: 'bert' }), task: 'causal-lm' }), code('UNSUPPORTED_OPTION'));
    assert.throws(() => buildBert({ ...base, config: { ...rawConfig({ prefix: 'bert' }), id2label: undefined, num_labels: 1 } }), (e: Error) => /regression/.test(e.message));
    assert.throws(() => buildBert({ ...base, config: { ...rawConfig({ prefix: 'bert' }), hidden_act: 'relu' } }), (e: Error) => /relu/.test(e.message));
    assert.throws(() => buildBert({ ...base, config: rawConfig({ prefix: 'bert' }), lora: loraSettings({ targetModules: ['q_proj'] }) }), code('TARGET_NOT_FOUND'));
    assert.throws(() => buildBert({ ...base, config: rawConfig({ prefix: 'bert' }), seqLen: 17 }), code('UNSUPPORTED_OPTION'));
  });

  test('architecture: model types and PEFT default targets', () => {
    assert.deepEqual([...bertArchitecture.modelTypes], ['bert', 'roberta', 'xlm-roberta']);
    assert.deepEqual([...bertArchitecture.defaultTargetModules], ['query', 'value']);
    assert.deepEqual([...bertArchitecture.tasks], ['sequence-classification']);
    for (const t of ['bert', 'roberta', 'xlm-roberta']) assert.equal(architectureFor({ model_type: t }), bertArchitecture, t);
  });
});

describe('BERT-family checkpoint tensors the classifier does not read', () => {
  const shapes = (v: Variant, extra: Record<string, number[]> = {}): Map<string, readonly number[]> =>
    new Map<string, readonly number[]>([...[...checkpoint(v)].map(([k, t]) => [k, t.shape] as [string, readonly number[]]), ...Object.entries(extra)]);
  const make = (v: Variant, tensors: Map<string, readonly number[]>): ModelGraph => buildBert({ config: rawConfig(v), tensors, lora: loraSettings(), task: 'sequence-classification', training: false });

  test("allowed as in transformers: the pretraining heads, the position-id buffer, and RoBERTa's pooler", () => {
    make({ prefix: 'bert' }, shapes({ prefix: 'bert' }, { 'cls.predictions.bias': [40], 'cls.predictions.transform.dense.weight': [16, 16], 'cls.seq_relationship.weight': [2, 16], 'bert.embeddings.position_ids': [1, 16] }));
    make({ prefix: 'roberta' }, shapes({ prefix: 'roberta' }, { 'roberta.pooler.dense.weight': [16, 16], 'roberta.pooler.dense.bias': [16], 'lm_head.dense.weight': [16, 16] }));
  });

  test('anything else is refused naming it, with a hint (a layer beyond num_hidden_layers; keys of the other family)', () => {
    const unused = (re: RegExp) => (e: unknown): boolean => e instanceof ModelError && e.code === 'TENSOR_UNUSED' && re.test(e.message);
    assert.throws(() => make({ prefix: 'bert' }, shapes({ prefix: 'bert' }, { 'bert.encoder.layer.2.output.dense.weight': [16, 24] })),
      unused(/'bert\.encoder\.layer\.2\.output\.dense\.weight'.*num_hidden_layers 2, but the checkpoint holds layer 2/));
    assert.throws(() => make({ prefix: 'bert' }, shapes({ prefix: 'bert' }, { 'roberta.pooler.dense.weight': [16, 16] })), unused(/keys start with 'roberta\.'/));
    // A BERT model has a pooler it reads: the allowance is RoBERTa's only.
    assert.throws(() => make({ prefix: 'roberta' }, shapes({ prefix: 'roberta' }, { 'bert.pooler.dense.weight': [16, 16] })), unused(/'bert\.pooler\.dense\.weight'/));
  });
});
