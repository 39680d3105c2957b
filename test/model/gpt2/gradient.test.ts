// Finite-difference checks of the whole tiny GPT-2 loss, in float64 (every op on the path has a
// float64 CPU kernel): central differences with eps 1e-6, |analytic − numeric| ≤ 1e-8 + 1e-5·|·|.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../../../src/core/random.js';
import type { Value } from '../../../src/graph/builder.js';
import { buildGpt2 } from '../../../src/model/gpt2/build.js';
import type { ModelGraph } from '../../../src/model/types.js';
import { F64, gradCheck, type Feed } from '../../graph/gradCheck.js';
import { TINY, loraSettings, paddedBatch, randomLora, tinyConfigJson, tinyShapes, tinyWeights, type Batch } from './fixture.js';

const weights = tinyWeights(31);

function feeds(model: ModelGraph, batch: Batch, labels: readonly number[], extra: ReadonlyMap<string, Float64Array>): Feed[] {
  const keyOf = new Map<string, string>(model.frozen.map((f) => [f.input, f.key]));
  for (const f of model.fullTrainable ?? []) if (f.key !== undefined) keyOf.set(f.input, f.key);
  return model.graph.inputs.map((v): Feed => {
    const dims = v.shape as number[];
    if (v.name === 'input_ids') return { value: v, data: BigInt64Array.from(batch.ids, BigInt), dims: [batch.batch, batch.seq] };
    if (v.name === 'attention_mask') return { value: v, data: BigInt64Array.from(batch.mask, BigInt), dims: [batch.batch, batch.seq] };
    if (v.name === 'labels') return { value: v, data: BigInt64Array.from(labels, BigInt), dims: labels.length === batch.batch ? [batch.batch] : [batch.batch, batch.seq] };
    const data = extra.get(v.name) ?? weights.get(keyOf.get(v.name) ?? '');
    assert.ok(data !== undefined, `no data for input ${v.name}`);
    return { value: v, data: Float64Array.from(data), dims };
  });
}

function byName(model: ModelGraph, names: readonly string[]): Value[] {
  return names.map((n) => {
    const v = model.trainable.find((t) => t.name === n);
    assert.ok(v !== undefined, `${n} is not trainable`);
    return v;
  });
}

const batch = paddedBatch([5, 3], 5, 2);
const lmLabels = batch.ids.map((id, i) => (batch.mask[i] === 1 ? id : -100));

describe('GPT-2 gradients against central differences (float64)', () => {
  test('causal LM: d loss / d LoRA A and B (c_attn of layer 0, mlp.c_proj of layer 1, non-zero B)', async () => {
    const model = buildGpt2({ config: tinyConfigJson(), tensors: tinyShapes(), lora: loraSettings({ targetModules: ['c_attn', 'c_proj'] }), task: 'causal-lm', training: false, dtype: 'float64' });
    const params = byName(model, ['transformer.h.0.attn.c_attn.lora_A', 'transformer.h.0.attn.c_attn.lora_B', 'transformer.h.1.mlp.c_proj.lora_A', 'transformer.h.1.mlp.c_proj.lora_B']);
    const grads = await gradCheck(model.graph, model.loss, feeds(model, batch, lmLabels, randomLora(model, 6)), params, { ...F64, maxCoords: 24 });
    for (const [i, gr] of grads.entries()) assert.ok(gr.some((x) => Math.abs(x) > 1e-6), `gradient of ${params[i].name} is all zero`);
  });

  test('sequence classification: d loss / d score (modules_to_save head) and a LoRA B', async () => {
    const labelsCount = 3;
    const model = buildGpt2({ config: tinyConfigJson(TINY, { num_labels: labelsCount }), tensors: tinyShapes(), lora: loraSettings({ targetModules: ['c_fc'] }), task: 'sequence-classification', training: false, dtype: 'float64' });
    const rng = createRng(4);
    const extra = randomLora(model, 7).set('score.weight', Float64Array.from({ length: labelsCount * TINY.d }, () => 0.5 * rng.gaussian()));
    const params = byName(model, ['score.weight', 'transformer.h.0.mlp.c_fc.lora_B']);
    await gradCheck(model.graph, model.loss, feeds(model, batch, [2, 0], extra), params, { ...F64, maxCoords: 16 });
  });

  test('trainAll: d loss / d the tied wte (embedding + lm_head), wpe, a LayerNorm scale and a Conv1D weight', async () => {
    const model = buildGpt2({ config: tinyConfigJson(), tensors: tinyShapes(), lora: loraSettings(), task: 'causal-lm', training: false, dtype: 'float64', trainAll: true });
    assert.equal(model.modules.length, 0);
    assert.equal(model.frozen.length, 0);
    assert.equal(model.trainable.length, tinyShapes().size);
    const params = byName(model, ['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.h.0.ln_1.weight', 'transformer.h.1.attn.c_attn.weight']);
    await gradCheck(model.graph, model.loss, feeds(model, batch, lmLabels, new Map()), params, { ...F64, maxCoords: 10 });
  });
});
