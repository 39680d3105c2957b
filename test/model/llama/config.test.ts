// Config parsing of the Qwen3 and Phi-3 members of the Llama family: head_dim, q/k norms, fused
// projections, partial RoPE and LongRoPE as transformers reads them, sliding layers, and the
// features refused by name (unknown RoPE types, partial RoPE outside Phi-3, Phi-3 residual dropout).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLlama } from '../../../src/model/llama/build.js';
import { parseLlamaConfig } from '../../../src/model/llama/config.js';
import { ropeSpec } from '../../../src/model/llama/rope.js';
import { ModelError } from '../../../src/model/errors.js';
import { assertClose } from '../../graph/gradCheck.js';
import { familyShapes } from './checkpoints.js';
import { SMALL_DECODER as BASE } from './configs.js';
import { loraSettings } from './harness.js';

const LONG = { type: 'longrope', short_factor: [1, 1, 1, 1, 1, 1, 1, 1], long_factor: [1, 2, 3, 4, 5, 6, 7, 8] };

function refused(code: string, re: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof ModelError && e.code === code && re.test(e.message);
}

describe('qwen3 and phi3 configs', () => {
  test('qwen3: explicit head_dim, q/k norms, no qkv bias unless attention_bias, sliding layers from layer_types', () => {
    const cfg = parseLlamaConfig({ ...BASE, model_type: 'qwen3', head_dim: 24, sliding_window: 3, use_sliding_window: true, layer_types: ['full_attention', 'sliding_attention'] });
    assert.deepEqual([cfg.headDim, cfg.qkNorm, cfg.qkvBias, cfg.fused, cfg.rope.rotaryDim], [24, true, false, false, 24]);
    assert.deepEqual([cfg.slidingWindow, cfg.slidingLayers], [3, [false, true]]);
    assert.equal(parseLlamaConfig({ ...BASE, model_type: 'qwen3', attention_bias: true }).qkvBias, true);
    assert.deepEqual(parseLlamaConfig({ ...BASE, model_type: 'qwen3', sliding_window: 3 }).slidingLayers, [false, false]);
  });

  test('phi3: fused, sliding window on every layer, partial RoPE rotates trunc(head_dim · factor) dims', () => {
    const cfg = parseLlamaConfig({ ...BASE, model_type: 'phi3', sliding_window: 7, partial_rotary_factor: 0.75 });
    assert.deepEqual([cfg.fused, cfg.qkNorm, cfg.headDim, cfg.rope.rotaryDim, cfg.slidingWindow, cfg.slidingLayers], [true, false, 16, 12, 7, [true, true]]);
    assertClose(cfg.rope.invFreq, Array.from({ length: 6 }, (_, i) => 1 / 10000 ** (2 * i / 12)), 1e-12, 0, 'partial inv freq over 12 dims');
  });

  test('LongRoPE (Phi-4-mini numbers): short factors, the long table past original_max_position_embeddings, attention factor √(1 + ln 32 / ln 4096)', () => {
    const raw = { max_position_embeddings: 131072, original_max_position_embeddings: 4096, rope_scaling: { type: 'longrope', short_factor: new Array(48).fill(1), long_factor: Array.from({ length: 48 }, (_, i) => 1 + i) } };
    const spec = ropeSpec({ ...raw, partial_rotary_factor: 0.75 }, 128, 10000, 131072, { partialRotary: true });
    assert.equal(spec.rotaryDim, 96);
    assertClose([spec.attentionScaling], [Math.sqrt(1 + Math.log(32) / Math.log(4096))], 1e-15, 0, 'attention factor');
    assert.equal(spec.long?.afterLength, 4096);
    assertClose(spec.long!.invFreq.slice(0, 3), [1, 1 / (2 * 10000 ** (2 / 96)), 1 / (3 * 10000 ** (4 / 96))], 1e-12, 0, 'long');
    // `su` is the early Phi-3 name; an explicit attention_factor wins; no long table when max ≤ original.
    const su = ropeSpec({ ...raw, partial_rotary_factor: 0.75, rope_scaling: { ...raw.rope_scaling, type: 'su', attention_factor: 1.5 } }, 128, 10000, 4096, { partialRotary: true });
    assert.deepEqual([su.attentionScaling, su.long], [1.5, undefined]);
  });

  test("LongRoPE's switch point: a top-level original_max_position_embeddings wins over the rope dict's; Phi-3 defaults to 4096 (Phi3Config)", () => {
    const phi3 = (extra: Record<string, unknown>): ReturnType<typeof parseLlamaConfig>['rope'] => parseLlamaConfig({ ...BASE, model_type: 'phi3', max_position_embeddings: 8192, ...extra }).rope;
    assert.equal(phi3({ rope_scaling: LONG }).long?.afterLength, 4096);
    assert.equal(phi3({ original_max_position_embeddings: 2048, rope_scaling: { ...LONG, original_max_position_embeddings: 1024 } }).long?.afterLength, 2048);
    assert.equal(parseLlamaConfig({ ...BASE, model_type: 'llama', max_position_embeddings: 8192, rope_scaling: { ...LONG, original_max_position_embeddings: 1024 } }).rope.long?.afterLength, 1024);
  });

  test('refused by name: unknown RoPE types, bad longrope factors, partial RoPE outside phi3, phi3 residual dropout in training', () => {
    assert.throws(() => parseLlamaConfig({ ...BASE, model_type: 'llama', rope_scaling: { rope_type: 'proportional', factor: 4 } }),
      refused('UNSUPPORTED_OPTION', /'proportional' is not supported \(supported: default, linear, llama3, dynamic, yarn, longrope\)/));
    assert.throws(() => parseLlamaConfig({ ...BASE, model_type: 'qwen3', rope_scaling: { rope_type: 'yarn' } }), refused('CONFIG_INVALID', /'yarn': 'factor' is missing/));
    assert.throws(() => parseLlamaConfig({ ...BASE, model_type: 'qwen3', rope_scaling: { type: 'dynamic' } }), refused('CONFIG_INVALID', /'dynamic': 'factor' must be a number/));
    assert.throws(() => parseLlamaConfig({ ...BASE, model_type: 'phi3', original_max_position_embeddings: 16, rope_scaling: { ...LONG, long_factor: [1, 2] } }), refused('CONFIG_INVALID', /long_factor' must be 8 positive numbers/));
    assert.throws(() => parseLlamaConfig({ ...BASE, model_type: 'llama', partial_rotary_factor: 0.5 }), refused('UNSUPPORTED_OPTION', /partial_rotary_factor 0\.5 \(partial RoPE\) is supported for model_type phi3 only/));
    // As in transformers, Phi-3 has no biases whatever the flags say.
    const biased = parseLlamaConfig({ ...BASE, model_type: 'phi3', attention_bias: true, mlp_bias: true });
    assert.deepEqual([biased.qkvBias, biased.oBias, biased.mlpBias], [false, false, false]);
    const config = { ...BASE, model_type: 'phi3', resid_pdrop: 0.1 };
    const options = { config, tensors: familyShapes(config), lora: loraSettings({ targetModules: ['qkv_proj'] }), task: 'causal-lm' as const };
    assert.throws(() => buildLlama({ ...options, training: true }), refused('UNSUPPORTED_OPTION', /resid_pdrop 0\.1/));
    assert.equal(buildLlama({ ...options, training: false }).modules.length, 2);
  });
});
