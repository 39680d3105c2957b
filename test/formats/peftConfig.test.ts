import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError } from '../../src/formats/errors.js';
import { alphaOf, isTargetModule, layerIndexOf, loraConfig, loraScaling, parseLoraConfig, patternKey, peftModulesToSave, rankOf, serializeLoraConfig } from '../../src/formats/peftConfig.js';

describe('LoRA config rules (as PEFT applies them)', () => {
  test('target_modules: a list matches a name or a dotted suffix; a string is a full-match regex', () => {
    const list = loraConfig({ r: 8, loraAlpha: 16, targetModules: ['c_attn', 'q_proj'] });
    assert.ok(isTargetModule(list, 'transformer.h.0.attn.c_attn'));
    assert.ok(isTargetModule(list, 'c_attn'));
    assert.ok(!isTargetModule(list, 'transformer.h.0.attn.xc_attn'));
    assert.ok(!isTargetModule(list, 'transformer.h.0.attn.c_attn.sub'));
    const regex = loraConfig({ r: 8, loraAlpha: 16, targetModules: String.raw`.*\.layers\.[01]\.self_attn\.(q|v)_proj` });
    assert.ok(isTargetModule(regex, 'model.layers.1.self_attn.v_proj'));
    assert.ok(!isTargetModule(regex, 'model.layers.2.self_attn.v_proj'));
    assert.ok(!isTargetModule(regex, 'model.layers.1.self_attn.v_proj.extra'));
  });

  test('rank_pattern / alpha_pattern: first key matching the path end after a dot, else r / lora_alpha', () => {
    const c = loraConfig({ r: 8, loraAlpha: 16, rankPattern: { 'h.1.attn.c_attn': 4, c_proj: 2 }, alphaPattern: { 'layers\\.0\\..*': 3 } });
    assert.equal(rankOf(c, 'transformer.h.1.attn.c_attn'), 4);
    assert.equal(rankOf(c, 'transformer.h.11.attn.c_attn'), 8, 'h.11 is not h.1');
    assert.equal(rankOf(c, 'transformer.h.0.attn.c_proj'), 2);
    assert.equal(rankOf(c, 'transformer.h.0.attn.xc_proj'), 8, 'a pattern matches after a dot only');
    assert.equal(alphaOf(c, 'model.layers.0.self_attn.q_proj'), 3);
    assert.equal(alphaOf(c, 'model.layers.10.self_attn.q_proj'), 16);
  });

  test('scaling: alpha / r, or alpha / √r with rsLoRA', () => {
    assert.equal(loraScaling(32, 16, false), 2);
    assert.equal(loraScaling(32, 16, true), 8);
    assert.equal(loraScaling(16, 8, true), 16 / Math.sqrt(8));
  });
});

describe('adapter_config.json', () => {
  test('serialises with sorted keys and PEFT field names; round-trips with unknown fields kept', () => {
    // prepare
    const c = loraConfig({ r: 4, loraAlpha: 8, targetModules: ['c_attn'], fanInFanOut: true, taskType: 'CAUSAL_LM', baseModelNameOrPath: 'gpt2' });
    // act
    const text = serializeLoraConfig(c);
    const json = JSON.parse(text) as Record<string, unknown>;
    // assert
    assert.deepEqual(json, {
      alpha_pattern: {},
      base_model_name_or_path: 'gpt2',
      bias: 'none',
      fan_in_fan_out: true,
      inference_mode: true,
      init_lora_weights: true,
      layers_pattern: null,
      layers_to_transform: null,
      lora_alpha: 8,
      lora_dropout: 0,
      modules_to_save: null,
      peft_type: 'LORA',
      r: 4,
      rank_pattern: {},
      revision: null,
      target_modules: ['c_attn'],
      task_type: 'CAUSAL_LM',
      use_rslora: false,
    });
    assert.deepEqual(Object.keys(json), Object.keys(json).sort());
    assert.ok(text.startsWith('{\n  "alpha_pattern": {},\n'));
    const withExtra = parseLoraConfig({ ...json, use_dora: false, megatron_core: 'megatron.core', peft_version: '0.13.2' }, 'a/adapter_config.json');
    assert.deepEqual(withExtra.extra, { use_dora: false, megatron_core: 'megatron.core', peft_version: '0.13.2' });
    assert.deepEqual(JSON.parse(serializeLoraConfig(withExtra)), { ...json, use_dora: false, megatron_core: 'megatron.core', peft_version: '0.13.2' });
  });

  test('refuses other PEFT types, DoRA, LoRA biases, bad r and bad patterns, naming the file', () => {
    const base = { peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj'] };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, peft_type: 'IA3' }, 'PEFT_UNSUPPORTED'],
      [{ ...base, use_dora: true }, 'PEFT_UNSUPPORTED'],
      [{ ...base, lora_bias: true }, 'PEFT_UNSUPPORTED'],
      [{ ...base, r: 0 }, 'PEFT_CONFIG_INVALID'],
      [{ ...base, r: 2.5 }, 'PEFT_CONFIG_INVALID'],
      [{ ...base, target_modules: [1] }, 'PEFT_CONFIG_INVALID'],
      [{ ...base, rank_pattern: { '(': 2 } }, 'PEFT_CONFIG_INVALID'],
      [{ ...base, bias: 'some' }, 'PEFT_CONFIG_INVALID'],
    ];
    for (const [json, code] of cases) {
      assert.throws(() => parseLoraConfig(json, 'ad/adapter_config.json'), (e: unknown) => e instanceof FormatError && e.code === code && e.message.startsWith('ad/adapter_config.json: '), JSON.stringify(json));
    }
  });
});

// Expectations taken from PEFT's own rules (peft/tuners/tuners_utils.py check_target_module_exists,
// peft/utils/other.py get_pattern_key: re.match(rf"(.*\.)?({key})$", name), keys in insertion order).
describe('PEFT rules for layers_to_transform, pattern keys and modules_to_save', () => {
  test('layers_to_transform keeps list targets to the listed layers (index after layers_pattern, or after any component)', () => {
    const some = loraConfig({ r: 8, loraAlpha: 16, targetModules: ['q_proj'], layersToTransform: [1, 3] });
    const one = loraConfig({ r: 8, loraAlpha: 16, targetModules: ['q_proj'], layersToTransform: 0, layersPattern: 'layers' });
    const other = loraConfig({ r: 8, loraAlpha: 16, targetModules: ['q_proj'], layersToTransform: [0], layersPattern: ['blocks'] });
    const empty = loraConfig({ r: 8, loraAlpha: 16, targetModules: ['q_proj'], layersToTransform: [] });
    const regex = loraConfig({ r: 8, loraAlpha: 16, targetModules: '.*q_proj', layersToTransform: [1] });

    assert.ok(isTargetModule(some, 'model.layers.3.self_attn.q_proj'));
    assert.ok(!isTargetModule(some, 'model.layers.0.self_attn.q_proj'));
    assert.ok(!isTargetModule(some, 'q_proj'), 'no layer index: not targeted');
    assert.ok(isTargetModule(one, 'model.layers.0.self_attn.q_proj'));
    assert.ok(!isTargetModule(one, 'model.layers.10.self_attn.q_proj'));
    assert.ok(!isTargetModule(other, 'model.layers.0.self_attn.q_proj'), 'the index must follow the layers_pattern component');
    assert.ok(isTargetModule(empty, 'model.layers.7.self_attn.q_proj'), 'an empty list restricts nothing');
    assert.ok(isTargetModule(regex, 'model.layers.0.self_attn.q_proj'), 'a regex target_modules ignores layers_to_transform');
    assert.equal(layerIndexOf('transformer.h.11.attn.c_attn', null), 11);
  });

  test('layers_to_transform is read and checked: an index or a list of indexes', () => {
    const base = { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'] };

    assert.deepEqual(parseLoraConfig({ ...base, layers_to_transform: [0, 2], layers_pattern: 'layers' }, 'c.json').layersToTransform, [0, 2]);
    assert.equal(parseLoraConfig({ ...base, layers_to_transform: 1 }, 'c.json').layersToTransform, 1);
    assert.throws(() => parseLoraConfig({ ...base, layers_to_transform: ['0'] }, 'c.json'), /'layers_to_transform' must be a layer index or a list of them, got \["0"\]/);
  });

  test('pattern keys: a key matches the whole path or its end after a dot; the first key in file order wins', () => {
    const patterns = { 'model.layers.0.self_attn.q_proj': 2, q_proj: 4, 'layers.0.self_attn.q_proj': 6 };

    assert.equal(patternKey(patterns, 'model.layers.0.self_attn.q_proj'), 'model.layers.0.self_attn.q_proj');
    assert.equal(patternKey(patterns, 'model.layers.1.self_attn.q_proj'), 'q_proj');
    assert.equal(patternKey({ 'layers.0.self_attn.q_proj': 6, q_proj: 4 }, 'model.layers.0.self_attn.q_proj'), 'layers.0.self_attn.q_proj');
    assert.equal(patternKey({ 'proj': 1 }, 'model.layers.0.self_attn.q_proj'), undefined, 'not a part of a name');
  });

  test('modules_to_save as PEFT writes it: SEQ_CLS heads by module ("classifier", "score"), other tasks unchanged', () => {
    assert.deepEqual(peftModulesToSave(['classifier.dense', 'classifier.out_proj'], 'SEQ_CLS'), ['classifier', 'score']);
    assert.deepEqual(peftModulesToSave(['score'], 'SEQ_CLS'), ['classifier', 'score']);
    assert.deepEqual(peftModulesToSave(['bert.pooler.dense', 'classifier'], 'SEQ_CLS'), ['bert.pooler.dense', 'classifier', 'score']);
    assert.deepEqual(peftModulesToSave(['lm_head'], 'CAUSAL_LM'), ['lm_head']);
    assert.equal(peftModulesToSave([], 'CAUSAL_LM'), null);
  });
});
