import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildGpt2 } from '../../../src/model/gpt2/build.js';
import { gpt2Architecture } from '../../../src/model/gpt2/architecture.js';
import type { BuildOptions } from '../../../src/model/types.js';
import { isModelError } from '../modelErrors.js';
import { TINY, loraSettings, tinyConfigJson, tinyShapes } from './fixture.js';

function options(fields: Partial<BuildOptions> = {}): BuildOptions {
  return { config: tinyConfigJson(), tensors: tinyShapes(), lora: loraSettings(), task: 'causal-lm', training: false, ...fields };
}

describe('GPT-2 build: inputs, options and errors', () => {
  test('data inputs come first, weights are frozen under HF names with their stored keys', () => {
    const model = gpt2Architecture.build(options());
    assert.deepEqual(model.graph.inputs.slice(0, 3).map((v) => v.toString()), ['input_ids: int64[batch, seq]', 'attention_mask: int64[batch, seq]', 'labels: int64[batch, seq]']);
    const wte = model.frozen.find((f) => f.input === 'transformer.wte.weight');
    assert.deepEqual(wte, { input: 'transformer.wte.weight', key: 'wte.weight', shape: [TINY.vocab, TINY.d] });
    // Tied lm_head: no separate input.
    assert.equal(model.frozen.length, tinyShapes().size);
    assert.deepEqual(model.logits.shape, ['batch', 'seq', TINY.vocab]);
    assert.equal(model.dropoutSeed, undefined);
  });

  test('keys stored with a transformer. prefix resolve too; a fixed seqLen gives static shapes', () => {
    const tensors = new Map([...tinyShapes()].map(([k, s]) => [`transformer.${k}`, s]));
    const model = buildGpt2(options({ tensors, seqLen: 5 }));
    assert.equal(model.frozen.find((f) => f.input === 'transformer.h.0.ln_1.weight')?.key, 'transformer.h.0.ln_1.weight');
    assert.equal(model.modules[0].baseKey, 'transformer.h.0.attn.c_attn.weight');
    assert.deepEqual(model.inputIds.shape, ['batch', 5]);
    assert.throws(() => buildGpt2(options({ seqLen: TINY.positions + 1 })), isModelError('UNSUPPORTED_OPTION', /seqLen 9 must be an integer in \[1, n_positions = 8\]/));
  });

  test('target_modules that match nothing: TARGET_NOT_FOUND with GPT-2 module names', () => {
    assert.throws(() => buildGpt2(options({ lora: loraSettings({ targetModules: ['q_proj'] }) })), isModelError('TARGET_NOT_FOUND', /'q_proj'/, /c_attn, c_proj, c_fc/));
  });

  test('a missing tensor or a wrong shape names the tensor', () => {
    const missing = tinyShapes();
    missing.delete('h.1.mlp.c_fc.bias');
    assert.throws(() => buildGpt2(options({ tensors: missing })), isModelError('TENSOR_NOT_FOUND', /'transformer\.h\.1\.mlp\.c_fc\.bias'/, /'h\.1\.mlp\.c_fc\.bias'/));
    const wrong = tinyShapes().set('h.0.attn.c_attn.weight', [3 * TINY.d, TINY.d]);
    assert.throws(() => buildGpt2(options({ tensors: wrong })), isModelError('TENSOR_SHAPE_MISMATCH', /'h\.0\.attn\.c_attn\.weight' has shape \[48, 16\], the config implies \[16, 48\]/));
  });

  test('modules_to_save: matching modules become trainable after the LoRA factors; unknown or LoRA-targeted ones are refused', () => {
    const model = buildGpt2(options({ lora: loraSettings({ targetModules: ['c_attn'], modulesToSave: ['ln_f'] }) }));
    assert.deepEqual(model.trainable.map((v) => v.name).slice(-2), ['transformer.ln_f.weight', 'transformer.ln_f.bias']);
    assert.deepEqual(model.fullTrainable?.map((f) => [f.name, f.key]), [['transformer.ln_f.weight', 'ln_f.weight'], ['transformer.ln_f.bias', 'ln_f.bias']]);
    assert.ok(!model.frozen.some((f) => f.input.startsWith('transformer.ln_f')));
    assert.throws(() => buildGpt2(options({ lora: loraSettings({ modulesToSave: ['classifier'] }) })), isModelError('MODULE_TO_SAVE_NOT_FOUND', /'classifier'/, /wte/));
    assert.throws(() => buildGpt2(options({ lora: loraSettings({ targetModules: ['c_attn'], modulesToSave: ['c_attn'] }) })), isModelError('UNSUPPORTED_OPTION', /both a LoRA target and in modules_to_save/));
  });

  test('trainAll: every checkpoint tensor trainable (plus the score head for classification), no adapters', () => {
    const model = buildGpt2(options({ trainAll: true, task: 'sequence-classification', config: tinyConfigJson(TINY, { num_labels: 2 }) }));
    assert.equal(model.modules.length, 0);
    assert.equal(model.frozen.length, 0);
    assert.equal(model.trainable.length, tinyShapes().size + 1);
    assert.equal(model.fullTrainable?.at(-1)?.name, 'score.weight');
    assert.ok(model.fullTrainable?.every((f, i) => f.input === model.trainable[i].name));
  });

  test('dropout: a seed input only when training with some rate > 0 (HF defaults are 0.1)', () => {
    const config = { ...tinyConfigJson() };
    delete config.attn_pdrop;
    delete config.embd_pdrop;
    delete config.resid_pdrop;
    assert.equal(buildGpt2(options({ config, training: true })).dropoutSeed?.dtype, 'int64');
    assert.equal(buildGpt2(options({ config, training: false })).dropoutSeed, undefined);
    assert.equal(buildGpt2(options({ training: true })).dropoutSeed, undefined);
    assert.throws(() => buildGpt2(options({ config: tinyConfigJson(TINY, { attn_pdrop: 1.5 }) })), isModelError('CONFIG_INVALID', /'attn_pdrop'/));
  });

  test('untied embeddings need lm_head.weight; unknown activations are refused', () => {
    const config = tinyConfigJson(TINY, { tie_word_embeddings: false });
    assert.throws(() => buildGpt2(options({ config })), isModelError('TENSOR_NOT_FOUND', /'lm_head\.weight'/));
    const model = buildGpt2(options({ config, tensors: tinyShapes().set('lm_head.weight', [TINY.vocab, TINY.d]) }));
    assert.ok(model.frozen.some((f) => f.key === 'lm_head.weight'));
    assert.throws(() => buildGpt2(options({ config: tinyConfigJson(TINY, { activation_function: 'swish' }) })), isModelError('UNSUPPORTED_OPTION', /'swish'/));
  });
});

describe('GPT-2 checkpoint tensors the built model does not read', () => {
  const withExtra = (extra: Record<string, number[]>): Map<string, number[]> => new Map([...tinyShapes(), ...Object.entries(extra)]);

  test('allowed: the causal-mask buffers older exports store; for classification, the language-model head', () => {
    buildGpt2(options({ tensors: withExtra({ 'h.0.attn.bias': [1, 1, 8, 8], 'h.1.attn.masked_bias': [] }) }));
    buildGpt2(options({ task: 'sequence-classification', config: tinyConfigJson(TINY, { num_labels: 2, pad_token_id: 0 }), tensors: withExtra({ 'lm_head.weight': [TINY.vocab, TINY.d] }) }));
  });

  test('refused, naming them with a hint: a stored lm_head under tied embeddings, a layer beyond n_layer, Llama-style weights', () => {
    assert.throws(() => buildGpt2(options({ tensors: withExtra({ 'lm_head.weight': [TINY.vocab, TINY.d] }) })),
      isModelError('TENSOR_UNUSED', /'lm_head\.weight'/, /ties the output layer to transformer\.wte\.weight.*remove it.*"tie_word_embeddings": false/));
    assert.throws(() => buildGpt2(options({ tensors: withExtra({ 'h.2.ln_1.weight': [TINY.d] }) })), isModelError('TENSOR_UNUSED', /n_layer 2, but the checkpoint holds layer 2/));
    assert.throws(() => buildGpt2(options({ tensors: withExtra({ 'model.layers.0.mlp.gate_proj.weight': [24, 16] }) })), isModelError('TENSOR_UNUSED', /Llama-family weights/, /allowed unread: \*\.attn\.bias/));
  });
});
