import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyModule, layerIndex } from '../../src/core/moduleNames.js';

describe('module names', () => {
  test('module types across GPT-2, Llama, BERT, GPT-NeoX and PEFT-decorated names', () => {
    const cases: [string, string][] = [
      ['transformer.h.3.attn.c_attn', 'qkv'],
      ['transformer.h.3.attn.c_proj', 'o'],
      ['transformer.h.3.mlp.c_fc', 'mlp'],
      ['transformer.h.3.mlp.c_proj', 'mlp'],
      ['base_model.model.model.layers.12.self_attn.q_proj', 'q'],
      ['model.layers.0.self_attn.k_proj', 'k'],
      ['model.layers.0.self_attn.v_proj.lora_A.default.weight', 'v'],
      ['model.layers.0.self_attn.o_proj', 'o'],
      ['model.layers.0.mlp.gate_proj', 'mlp'],
      ['model.layers.0.mlp.up_proj', 'mlp'],
      ['model.layers.0.mlp.down_proj', 'mlp'],
      ['bert.encoder.layer.5.attention.self.query', 'q'],
      ['bert.encoder.layer.5.attention.self.key', 'k'],
      ['bert.encoder.layer.5.attention.self.value', 'v'],
      ['bert.encoder.layer.5.attention.output.dense', 'o'],
      ['bert.encoder.layer.5.intermediate.dense', 'mlp'],
      ['bert.encoder.layer.5.output.dense', 'mlp'],
      ['bert.pooler.dense', 'other'],
      ['gpt_neox.layers.2.attention.query_key_value', 'qkv'],
      ['gpt_neox.layers.2.attention.dense', 'o'],
      ['gpt_neox.layers.2.mlp.dense_h_to_4h', 'mlp'],
      ['model.decoder.layers.1.fc1', 'mlp'],
      ['model.decoder.layers.1.fc2', 'mlp'],
      ['model.decoder.layers.1.self_attn.out_proj', 'o'],
      ['lm_head', 'other'],
      ['classifier', 'other'],
    ];
    for (const [name, type] of cases) assert.equal(classifyModule(name), type, name);
  });

  test('layer index from layers.N., h.N., layer.N., blocks.N.', () => {
    assert.equal(layerIndex('model.layers.12.self_attn.q_proj'), 12);
    assert.equal(layerIndex('transformer.h.3.attn.c_attn'), 3);
    assert.equal(layerIndex('bert.encoder.layer.5.attention.self.query'), 5);
    assert.equal(layerIndex('blocks.0.mlp.fc1'), 0);
    assert.equal(layerIndex('lm_head'), null);
    assert.equal(layerIndex('model.head.3.proj'), null);
  });
});
