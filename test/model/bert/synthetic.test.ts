// Synthetic BERT/RoBERTa checkpoints and adapters (src/model/checkpoints/synthetic.ts, family
// 'bert'): the state dict written out by hand here, a config the BERT builder accepts, a forward
// pass from the file's tensors against the float64 reference, and SEQ_CLS adapters.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPeftAdapter } from '../../../src/formats/peft.js';
import { buildBert } from '../../../src/model/bert/build.js';
import { syntheticModules, writeSyntheticAdapters, writeSyntheticCheckpoint, type SyntheticModelSpec } from '../../../src/model/checkpoints/synthetic.js';
import { assertClose } from '../../graph/gradCheck.js';
import { readTensors64, suiteFreshDirs } from '../checkpoints/syntheticFixture.js';
import { loraSettings, randomFactors, runModel, uniform } from '../llama/harness.js';
import { bertReference } from './reference.js';

const BERT: SyntheticModelSpec = { family: 'bert', layers: 2, hidden: 16, heads: 4, intermediate: 24, vocab: 40, positions: 8, seed: 6 };

const fresh = suiteFreshDirs('synthetic-bert');

/** The expected state dict, written out by hand (d = 16, MLP 24, 2 layers). */
function expected(prefix: 'bert' | 'roberta', head: boolean): Map<string, number[]> {
  const e = new Map<string, number[]>([
    [`${prefix}.embeddings.word_embeddings.weight`, [40, 16]],
    [`${prefix}.embeddings.position_embeddings.weight`, [prefix === 'bert' ? 8 : 10, 16]],
    [`${prefix}.embeddings.token_type_embeddings.weight`, [prefix === 'bert' ? 2 : 1, 16]],
    [`${prefix}.embeddings.LayerNorm.weight`, [16]],
    [`${prefix}.embeddings.LayerNorm.bias`, [16]],
  ]);
  for (const l of [0, 1]) {
    const p = `${prefix}.encoder.layer.${l}`;
    for (const m of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) e.set(`${p}.${m}.weight`, [16, 16]).set(`${p}.${m}.bias`, [16]);
    e.set(`${p}.intermediate.dense.weight`, [24, 16]).set(`${p}.intermediate.dense.bias`, [24]);
    e.set(`${p}.output.dense.weight`, [16, 24]).set(`${p}.output.dense.bias`, [16]);
    for (const n of ['attention.output.LayerNorm', 'output.LayerNorm']) e.set(`${p}.${n}.weight`, [16]).set(`${p}.${n}.bias`, [16]);
  }
  if (prefix === 'bert') e.set('bert.pooler.dense.weight', [16, 16]).set('bert.pooler.dense.bias', [16]);
  if (head && prefix === 'bert') e.set('classifier.weight', [3, 16]).set('classifier.bias', [3]);
  if (head && prefix === 'roberta') {
    e.set('classifier.dense.weight', [16, 16]).set('classifier.dense.bias', [16]).set('classifier.out_proj.weight', [3, 16]).set('classifier.out_proj.bias', [3]);
  }
  return e;
}

describe('synthetic BERT/RoBERTa checkpoints', () => {
  test('bert: HF key names and Linear shapes, no head by default, LayerNorms at one/zero', async () => {
    const { file, tensors } = await writeSyntheticCheckpoint(fresh(), BERT);
    const got = await readTensors64(file);
    assert.equal(tensors, got.size);
    assert.deepEqual(new Map([...got].map(([k, t]) => [k, t.shape])), expected('bert', false));
    for (const [k, t] of got) {
      if (k.endsWith('LayerNorm.weight')) assert.ok(t.data.every((x) => x === 1), k);
      else if (k.endsWith('.bias')) assert.ok(t.data.every((x) => x === 0), k);
      else assert.ok(t.data.some((x) => x !== 0), k);
    }
  });

  test('roberta with a 3-label head: config, offset position table, and a forward pass from the file matching the reference', async () => {
    const dir = fresh();
    const spec: SyntheticModelSpec = { ...BERT, modelType: 'roberta', numLabels: 3, classifierHead: true };
    const { file } = await writeSyntheticCheckpoint(dir, spec);
    const got = await readTensors64(file);
    assert.deepEqual(new Map([...got].map(([k, t]) => [k, t.shape])), expected('roberta', true));
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([config.model_type, config.max_position_embeddings, config.pad_token_id, config.hidden_act, Object.keys(config.id2label as object).length], ['roberta', 10, 1, 'gelu', 3]);

    // Prepare: the builder on the file's tensor list (seq 8 = positions), LoRA factors random, LayerNorm biases random so they count.
    const model = buildBert({ config, tensors: new Map([...got].map(([k, t]) => [k, t.shape])), lora: loraSettings({ targetModules: ['query', 'value'] }), task: 'sequence-classification', training: false, seqLen: 8 });
    assert.deepEqual(model.frozen.length + (model.fullTrainable?.length ?? 0), got.size);
    const weights = new Map([...got].map(([k, t], i) => [k, k.endsWith('.bias') ? uniform(t.data.length, 400 + i, -0.1, 0.1) : t.data]));
    const factors = randomFactors(model, 2, 5);
    const ids = [[0, 5, 9, 13, 21, 33, 2, 1], [0, 7, 7, 2, 1, 1, 1, 1]];
    const mask = ids.map((row) => row.map((id) => (id === 1 ? 0 : 1)));
    // Act.
    const out = await runModel(model, { values: new Map([...weights, ...factors.byInput]), ids, mask, labels: [2, 1] });
    // Assert.
    const ref = bertReference({ prefix: 'roberta', hidden: 16, layers: 2, heads: 4, intermediate: 24, eps: 1e-5, numLabels: 3, pad: 1, gelu: 'erf' }, weights, { r: 2, scaling: 2, factors: factors.byPath }, ids, mask, [2, 1]);
    assertClose(out.logits, ref.logits, 1e-4, 1e-6, 'logits');
    assertClose([out.loss], [ref.loss], 1e-5, 1e-6, 'loss');
  });

  test('SEQ_CLS adapters over query/value with the bert. module paths', async () => {
    const [a] = await Promise.all((await writeSyntheticAdapters(fresh(), BERT, { clients: 2, rank: 2, alpha: 4, targetModules: ['query', 'value'] })).map((d) => readPeftAdapter(d)));
    assert.equal(a.config.taskType, 'SEQ_CLS');
    assert.equal(a.config.fanInFanOut, false);
    assert.deepEqual(a.modules.map((m) => [m.modulePath, m.A.shape, m.B.shape]), [0, 1].flatMap((l) => ['query', 'value'].map((n) => [`bert.encoder.layer.${l}.attention.self.${n}`, [2, 16], [16, 2]])));
    assert.deepEqual(syntheticModules(BERT).filter((m) => m.name === 'dense').map((m) => [m.inFeatures, m.outFeatures]), [[16, 16], [16, 24], [24, 16], [16, 16], [16, 24], [24, 16]]);
  });
});
