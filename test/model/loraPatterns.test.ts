// PEFT's per-module LoRA rules as the model build applies them (src/model/targetModules.ts):
// moduleLora (rank_pattern, alpha_pattern, use_rslora per module) and selectLoraModules
// (target_modules, then layers_to_transform / layers_pattern), with the errors for patterns that
// select nothing. Expected values are PEFT's (peft/utils/other.py get_pattern_key:
// re.match(rf"(.*\.)?({key})$", name), keys in order; tuners_utils.check_target_module_exists).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelError } from '../../src/model/errors.js';
import { checkLoraPatterns, moduleLora, selectLoraModules } from '../../src/model/targetModules.js';

const LLAMA = [0, 1, 2].flatMap((l) => ['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((n) => `model.layers.${l}.self_attn.${n}`)).concat('lm_head');
const GPT2 = [0, 1].flatMap((l) => [`transformer.h.${l}.attn.c_attn`, `transformer.h.${l}.attn.c_proj`, `transformer.h.${l}.mlp.c_proj`]);

function code(c: string, message: RegExp): (e: unknown) => boolean {
  return (e: unknown) => e instanceof ModelError && e.code === c && message.test(e.message);
}

describe("moduleLora: each module's rank, alpha and scaling", () => {
  test('no patterns: r and alpha everywhere (the uniform case)', () => {
    assert.deepEqual(moduleLora({ r: 8, alpha: 16, useRslora: false }, 'model.layers.0.self_attn.q_proj'), { rank: 8, alpha: 16, scaling: 2 });
  });

  test("the first key matching the end of the path at a dot wins; rsLoRA divides each module's alpha by √ its rank", () => {
    const lora = { r: 8, alpha: 16, useRslora: true, rankPattern: { 'layers.1.self_attn.q_proj': 4, q_proj: 2, 'self_attn\\.(k|v)_proj': 6 }, alphaPattern: { '^model\\.layers\\.0\\..*': 3 } };

    assert.deepEqual(moduleLora(lora, 'model.layers.1.self_attn.q_proj'), { rank: 4, alpha: 16, scaling: 16 / 2 });
    assert.deepEqual(moduleLora(lora, 'model.layers.11.self_attn.q_proj'), { rank: 2, alpha: 16, scaling: 16 / Math.sqrt(2) }, 'layers.11 is not layers.1');
    assert.deepEqual(moduleLora(lora, 'model.layers.0.self_attn.v_proj'), { rank: 6, alpha: 3, scaling: 3 / Math.sqrt(6) });
    assert.deepEqual(moduleLora(lora, 'model.layers.2.self_attn.o_proj'), { rank: 8, alpha: 16, scaling: 16 / Math.sqrt(8) });
    assert.equal(moduleLora(lora, 'model.layers.2.self_attn.xq_proj').rank, 8, 'a key matches after a dot only');
  });
});

describe('selectLoraModules: target_modules, then layers_to_transform', () => {
  test('layers_to_transform keeps the listed layers, by the number after layers_pattern or after any component; none or [] keeps all', () => {
    assert.deepEqual(selectLoraModules(LLAMA, { targetModules: ['q_proj'], layersToTransform: [0, 2], layersPattern: 'layers' }), ['model.layers.0.self_attn.q_proj', 'model.layers.2.self_attn.q_proj']);
    assert.deepEqual(selectLoraModules(GPT2, { targetModules: ['c_proj'], layersToTransform: 1 }), ['transformer.h.1.attn.c_proj', 'transformer.h.1.mlp.c_proj']);
    assert.equal(selectLoraModules(LLAMA, { targetModules: ['q_proj'], layersToTransform: [] }).length, 3);
    assert.equal(selectLoraModules(LLAMA, { targetModules: ['q_proj'], layersToTransform: null }).length, 3);
    assert.deepEqual(selectLoraModules(LLAMA, { targetModules: ['all-linear'], layersToTransform: [1] }), LLAMA.filter((p) => p.includes('layers.1.')), 'lm_head has no layer index');
  });

  test("a layers_to_transform index past the model's depth is LORA_PATTERN_INVALID naming the index and the layers", () => {
    assert.throws(() => selectLoraModules(LLAMA, { targetModules: ['q_proj'], layersToTransform: [1, 3] }),
      code('LORA_PATTERN_INVALID', /layers_to_transform \[1,3\] names layer 3, but the model's adaptable modules sit in 3 layers \(0–2\)/));
  });

  test('a layers_pattern no path has is LORA_PATTERN_INVALID', () => {
    assert.throws(() => selectLoraModules(GPT2, { targetModules: ['c_attn'], layersToTransform: [0], layersPattern: 'layers' }),
      code('LORA_PATTERN_INVALID', /no module path has a layer index after layers_pattern "layers" \(paths look like 'transformer\.h\.0\.attn\.c_attn'\)/));
  });

  test('with a regular-expression target_modules, layers_to_transform is refused (PEFT refuses the pair)', () => {
    assert.throws(() => selectLoraModules(LLAMA, { targetModules: ['.*q_proj'], layersToTransform: [0] }), code('LORA_PATTERN_INVALID', /cannot restrict a regular-expression target_modules '\.\*q_proj'/));
  });

  test('a full path in target_modules whose layer the list leaves out is refused (PEFT releases disagree)', () => {
    assert.throws(() => selectLoraModules(LLAMA, { targetModules: ['model.layers.1.self_attn.q_proj', 'v_proj'], layersToTransform: [0] }),
      code('LORA_PATTERN_INVALID', /names 'model\.layers\.1\.self_attn\.q_proj' exactly and layers_to_transform \[0\] leaves its layer out/));
  });

  test('a rank_pattern or alpha_pattern key matching no adapted module is LORA_PATTERN_INVALID, also when the layers restriction removed its module', () => {
    const base = { targetModules: ['q_proj', 'v_proj'] };

    assert.throws(() => selectLoraModules(LLAMA, { ...base, rankPattern: { k_proj: 2 } }), code('LORA_PATTERN_INVALID', /rank_pattern key 'k_proj' matches none of the 6 adapted modules/));
    assert.throws(() => selectLoraModules(LLAMA, { ...base, alphaPattern: { 'layers.1.self_attn.q_proj': 2 }, layersToTransform: [0, 2] }),
      code('LORA_PATTERN_INVALID', /alpha_pattern key 'layers\.1\.self_attn\.q_proj' matches none of the 4 adapted modules/));
    assert.equal(selectLoraModules(LLAMA, { ...base, rankPattern: { 'layers.1.self_attn.q_proj': 2 } }).length, 6);
  });

  test('a rank that is not a positive integer, an alpha that is not finite, a key that is not a regex: named errors', () => {
    assert.throws(() => checkLoraPatterns(LLAMA, { rankPattern: { q_proj: 0 } }), code('LORA_PATTERN_INVALID', /rank_pattern 'q_proj': a rank must be a positive integer, got 0/));
    assert.throws(() => checkLoraPatterns(LLAMA, { rankPattern: { q_proj: 2.5 } }), code('LORA_PATTERN_INVALID', /got 2\.5/));
    assert.throws(() => checkLoraPatterns(LLAMA, { alphaPattern: { q_proj: Number.NaN } }), code('LORA_PATTERN_INVALID', /alpha_pattern 'q_proj': an alpha must be a finite number/));
    assert.throws(() => checkLoraPatterns(LLAMA, { rankPattern: { '(q_proj': 2 } }), code('INVALID_TARGET_PATTERN', /rank_pattern: '\(q_proj' is not a valid regular expression/));
  });
});
