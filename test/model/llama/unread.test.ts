// A checkpoint tensor that no part of the built model reads is an error naming it (TENSOR_UNUSED),
// with a hint at the config that would read it, unless a listed allowance covers it
// (`rotary_emb.inv_freq`). The case that motivated it: a Qwen3 checkpoint relabelled `llama` used to
// train with its q_norm/k_norm dropped and no message.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLlama } from '../../../src/model/llama/build.js';
import { ModelError } from '../../../src/model/errors.js';
import { architectureFor } from '../../../src/model/registry.js';
import { familyShapes } from './checkpoints.js';
import { QWEN3_SMALL } from './configs.js';
import { loraSettings } from './harness.js';

const QWEN3 = { ...QWEN3_SMALL, head_dim: 8 };
const LLAMA = { ...QWEN3, model_type: 'llama' };

function build(config: Record<string, unknown>, tensors: ReadonlyMap<string, readonly number[]>): ReturnType<typeof buildLlama> {
  return architectureFor(config).build({ config, tensors, lora: loraSettings(), task: 'causal-lm', training: true });
}

function unused(re: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof ModelError && e.code === 'TENSOR_UNUSED' && re.test(e.message);
}

describe('checkpoint tensors the built model does not read', () => {
  test('a Qwen3 checkpoint labelled llama: TENSOR_UNUSED names the q/k norms (4 of them) and suggests model_type qwen3', () => {
    const tensors = familyShapes(QWEN3);

    assert.throws(() => build(LLAMA, tensors), (e: unknown) => {
      assert.ok(e instanceof ModelError && e.code === 'TENSOR_UNUSED', String(e));
      assert.match(e.message, /has 4 tensors that no part of the built model reads: 'model\.layers\.0\.self_attn\.q_norm\.weight', 'model\.layers\.0\.self_attn\.k_norm\.weight'/);
      assert.match(e.message, /"model_type": "qwen3"/);
      return true;
    });
    // Labelled right, the same tensors build, every one read.
    const model = build(QWEN3, tensors);
    assert.deepEqual(model.frozen.map((f) => f.key).sort(), [...tensors.keys()].sort());
  });

  test('allowed: rotary_emb.inv_freq buffers (recomputed from config.json), listed in the message of other errors', () => {
    const tensors = new Map([...familyShapes(LLAMA), ['model.layers.0.self_attn.rotary_emb.inv_freq', [4]], ['model.layers.1.self_attn.rotary_emb.inv_freq', [4]]]);
    const model = build(LLAMA, tensors);
    assert.ok(!model.frozen.some((f) => f.key.includes('inv_freq')));
    tensors.set('model.layers.0.self_attn.q_norm.weight', [8]);
    assert.throws(() => build(LLAMA, tensors), unused(/\(allowed unread: \*\.rotary_emb\.inv_freq, RoPE frequencies .* recomputes them from config\.json\)/));
  });

  test('tied embeddings with a stored lm_head.weight: not read (as in transformers), so refused with both ways out', () => {
    const tensors = new Map([...familyShapes(LLAMA), ['lm_head.weight', [40, 16]]]);
    assert.throws(() => build(LLAMA, tensors), unused(/'lm_head\.weight'.*tie_word_embeddings: true.*remove it.*"tie_word_embeddings": false/));
    // Untied, it is the output layer.
    const model = build({ ...LLAMA, tie_word_embeddings: false }, tensors);
    assert.ok(model.frozen.some((f) => f.key === 'lm_head.weight'));
  });

  test('a layer beyond num_hidden_layers, Qwen2 biases under llama, and anything else: named, with a hint', () => {
    const deeper = familyShapes({ ...LLAMA, num_hidden_layers: 3 });
    assert.throws(() => build(LLAMA, deeper), unused(/9 tensors .*'model\.layers\.2\.input_layernorm\.weight'.* and 1 more.*num_hidden_layers 2, but the checkpoint holds layer 2/));
    const qwen2 = familyShapes({ ...LLAMA, model_type: 'qwen2' });
    assert.throws(() => build(LLAMA, qwen2), unused(/q_proj\.bias.*"model_type": "qwen2".*"attention_bias": true/));
    const odd = new Map([...familyShapes(LLAMA), ['model.extra_thing', [3]]]);
    assert.throws(() => build(LLAMA, odd), unused(/'model\.extra_thing'.*config\.json \('llama'\) does not describe this checkpoint/));
  });

  test('trainAll reads every tensor too: the same check applies', () => {
    const tensors = familyShapes(QWEN3);
    assert.throws(() => buildLlama({ config: LLAMA, tensors, lora: loraSettings(), task: 'causal-lm', training: true, trainAll: true }), unused(/q_norm/));
  });
});
