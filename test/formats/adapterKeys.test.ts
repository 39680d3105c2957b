import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkBaseShape, inferLayout, resolveBaseKey } from '../../src/formats/adapterKeys.js';
import { FormatError } from '../../src/formats/errors.js';

// Key names as GPT-2 hub checkpoints (no `transformer.` prefix) and Llama checkpoints store them.
const GPT2_HUB = new Set(['wte.weight', 'wpe.weight', 'h.0.attn.c_attn.weight', 'h.0.attn.c_attn.bias', 'h.0.attn.c_proj.weight', 'h.1.attn.c_attn.weight', 'ln_f.weight']);
const GPT2_PREFIXED = new Set([...GPT2_HUB].map((k) => `transformer.${k}`));
const LLAMA = new Set(['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.mlp.down_proj.weight', 'lm_head.weight']);
const LLAMA_BARE = new Set(['embed_tokens.weight', 'layers.0.self_attn.q_proj.weight']);

describe('resolveBaseKey', () => {
  test('GPT-2: PEFT module path (transformer.…) finds hub keys without the prefix, and prefixed keys as they are', () => {
    assert.equal(resolveBaseKey('transformer.h.0.attn.c_attn', GPT2_HUB), 'h.0.attn.c_attn.weight');
    assert.equal(resolveBaseKey('transformer.h.0.attn.c_attn', GPT2_PREFIXED), 'transformer.h.0.attn.c_attn.weight');
    assert.equal(resolveBaseKey('h.0.attn.c_attn', GPT2_PREFIXED), 'transformer.h.0.attn.c_attn.weight');
    assert.equal(resolveBaseKey('base_model.model.transformer.h.1.attn.c_attn', GPT2_HUB), 'h.1.attn.c_attn.weight');
    assert.equal(resolveBaseKey('transformer.h.0.attn.c_attn', GPT2_HUB, { param: 'bias' }), 'h.0.attn.c_attn.bias');
  });

  test('Llama: model.layers… as is, against a bare checkpoint, and added when the path lacks it', () => {
    assert.equal(resolveBaseKey('model.layers.0.self_attn.q_proj', LLAMA), 'model.layers.0.self_attn.q_proj.weight');
    assert.equal(resolveBaseKey('model.layers.0.self_attn.q_proj', LLAMA_BARE), 'layers.0.self_attn.q_proj.weight');
    assert.equal(resolveBaseKey('layers.0.mlp.down_proj', LLAMA), 'model.layers.0.mlp.down_proj.weight');
    assert.equal(resolveBaseKey('lm_head', LLAMA), 'lm_head.weight');
  });

  test('BERT: bert.encoder… against a bare BertModel checkpoint', () => {
    const keys = ['encoder.layer.0.attention.self.query.weight'];
    assert.equal(resolveBaseKey('bert.encoder.layer.0.attention.self.query', keys), 'encoder.layer.0.attention.self.query.weight');
  });

  test('the exact key wins over a prefix variant when both exist', () => {
    const keys = new Set(['h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_attn.weight']);
    assert.equal(resolveBaseKey('transformer.h.0.attn.c_attn', keys), 'transformer.h.0.attn.c_attn.weight');
  });

  test('no match: KEY_NOT_FOUND naming the module, the keys tried and close keys', () => {
    assert.throws(() => resolveBaseKey('transformer.h.7.attn.c_attn', GPT2_HUB, { file: 'gpt2/model.safetensors' }), (e: unknown) => {
      assert.ok(e instanceof FormatError);
      assert.equal(e.code, 'KEY_NOT_FOUND');
      assert.ok(e.message.startsWith('gpt2/model.safetensors: '), e.message);
      assert.ok(e.message.includes("'transformer.h.7.attn.c_attn'"), e.message);
      assert.ok(e.message.includes("'h.7.attn.c_attn.weight'"), 'lists a key it tried');
      assert.ok(e.message.includes("'h.0.attn.c_attn.weight'") && e.message.includes("'h.1.attn.c_attn.weight'"), 'lists close keys');
      assert.ok(!e.message.includes("'wte.weight'"), 'does not list unrelated keys');
      return true;
    });
  });
});

describe('layouts', () => {
  test('inferLayout from fan_in_fan_out or model type', () => {
    assert.equal(inferLayout(true), 'conv1d');
    assert.equal(inferLayout(false), 'linear');
    assert.equal(inferLayout('gpt2'), 'conv1d');
    assert.equal(inferLayout('gpt2', 'transformer.h.3.mlp.c_fc'), 'conv1d');
    assert.equal(inferLayout('gpt2', 'lm_head'), 'linear');
    assert.equal(inferLayout('llama', 'model.layers.0.self_attn.q_proj'), 'linear');
  });

  test('checkBaseShape: Linear is out × in, Conv1D is in × out (non-square, so a transpose cannot hide)', () => {
    // A is r × in = 4 × 8, B is out × r = 24 × 4
    const lora = { A: { shape: [4, 8] }, B: { shape: [24, 4] } };
    checkBaseShape([24, 8], 'linear', lora, { modulePath: 'q' });
    checkBaseShape([8, 24], 'conv1d', lora, { modulePath: 'c_attn' });
    assert.throws(() => checkBaseShape([8, 24], 'linear', lora, { modulePath: 'transformer.h.0.attn.c_attn', baseKey: 'h.0.attn.c_attn.weight', file: 'm.safetensors' }),
      (e: unknown) =>
        e instanceof FormatError && e.code === 'BASE_SHAPE_MISMATCH' && e.message.includes('Conv1D (fan_in_fan_out = true)')
        && e.message.includes("tensor 'h.0.attn.c_attn.weight'") && e.message.includes('m.safetensors'));
    assert.throws(() => checkBaseShape([24, 9], 'linear', lora, { modulePath: 'q' }), (e: unknown) => e instanceof FormatError && e.code === 'BASE_SHAPE_MISMATCH' && !e.message.includes('fits'));
    assert.throws(() => checkBaseShape([24, 8], 'linear', { A: { shape: [4, 8] }, B: { shape: [24, 5] } }, { modulePath: 'q' }), (e: unknown) => e instanceof FormatError && e.code === 'BASE_SHAPE_MISMATCH');
  });
});
