// Gemma 2 / Gemma 3 text config parsing as transformers 5 reads it (class defaults, sliding layers
// from layer_types or the pattern, the two RoPEs of Gemma 3 in the transformers 4 and 5 formats, the
// √hidden embedding factor), what is refused by name (multimodal gemma3, bidirectional attention,
// other activations, sliding layers without a window), and checkpoint tensors the build never reads.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError } from '../../../src/formats/errors.js';
import { parseHfConfig } from '../../../src/formats/hfConfig.js';
import { ModelError } from '../../../src/model/errors.js';
import { parseGemmaConfig } from '../../../src/model/gemma/config.js';
import { architectureFor } from '../../../src/model/registry.js';
import { assertClose } from '../../graph/gradCheck.js';
import { familyShapes } from '../llama/checkpoints.js';
import { loraSettings } from '../llama/harness.js';

const BASE = {
  hidden_size: 16,
  num_hidden_layers: 4,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  intermediate_size: 24,
  vocab_size: 40,
  max_position_embeddings: 64,
};
const GEMMA2 = { ...BASE, model_type: 'gemma2' };
const GEMMA3 = { ...BASE, model_type: 'gemma3_text', num_hidden_layers: 7 };

function refused(code: string, re: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof ModelError && e.code === code && re.test(e.message);
}

describe('gemma configs', () => {
  test('gemma2 with the class defaults: tied, caps 50 and 30, scale 256^-½, window 4096 on even layers, one RoPE (θ 1e4)', () => {
    const cfg = parseGemmaConfig(GEMMA2);

    assert.deepEqual([cfg.tieWordEmbeddings, cfg.attentionSoftcap, cfg.finalSoftcap, cfg.attentionScale, cfg.slidingWindow, cfg.qkNorm], [true, 50, 30, 1 / 16, 4096, false]);
    assert.deepEqual(cfg.slidingLayers, [true, false, true, false]);
    assert.equal(cfg.rope.full, cfg.rope.sliding);
    assertClose(cfg.rope.full.invFreq, [1, 0.1, 0.01, 0.001], 1e-12, 0, 'θ 1e4 over head_dim 8');
    // Caps written as null are off.
    const uncapped = parseGemmaConfig({ ...GEMMA2, attn_logit_softcapping: null, final_logit_softcapping: null });
    assert.deepEqual([uncapped.attentionSoftcap, uncapped.finalSoftcap], [undefined, undefined]);
  });

  test('gemma3_text: one full layer in sliding_window_pattern (6 by default), layer_types winning; no caps; q/k norms', () => {
    const cfg = parseGemmaConfig(GEMMA3);
    assert.deepEqual(cfg.slidingLayers, [true, true, true, true, true, false, true]);
    assert.deepEqual([cfg.qkNorm, cfg.attentionSoftcap, cfg.finalSoftcap], [true, undefined, undefined]);
    assert.deepEqual(parseGemmaConfig({ ...GEMMA3, sliding_window_pattern: 2 }).slidingLayers, [true, false, true, false, true, false, true]);
    const types = ['full_attention', 'sliding_attention', 'full_attention', 'full_attention', 'full_attention', 'full_attention', 'sliding_attention'];
    assert.deepEqual(parseGemmaConfig({ ...GEMMA3, layer_types: types }).slidingLayers, types.map((t) => t === 'sliding_attention'));
    // transformers 5's Gemma 3 attention never applies attn_logit_softcapping; the final cap it does.
    const capped = parseGemmaConfig({ ...GEMMA3, attn_logit_softcapping: 50, final_logit_softcapping: 30 });
    assert.deepEqual([capped.attentionSoftcap, capped.finalSoftcap], [undefined, 30]);
  });

  test("gemma3_text RoPE: rope_theta (1e6) + rope_scaling on full layers, rope_local_base_freq (1e4) on sliding ones; transformers 5's rope_parameters by layer type", () => {
    const v4 = parseGemmaConfig({ ...GEMMA3, rope_scaling: { rope_type: 'linear', factor: 8 } });
    assertClose(v4.rope.full.invFreq, [1, 10 ** -1.5, 1e-3, 10 ** -4.5].map((f) => f / 8), 1e-12, 0, 'full: 1e6, ÷ 8');
    assertClose(v4.rope.sliding.invFreq, [1, 0.1, 0.01, 0.001], 1e-12, 0, 'sliding: 1e4');
    const v5 = parseGemmaConfig({ ...GEMMA3, rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 100 }, sliding_attention: { rope_type: 'linear', factor: 2, rope_theta: 10000 } } });
    assertClose(v5.rope.full.invFreq, [1, 100 ** -0.25, 0.1, 100 ** -0.75], 1e-12, 0, 'full: θ 100');
    assertClose(v5.rope.sliding.invFreq, [0.5, 0.05, 0.005, 0.0005], 1e-12, 0, 'sliding: 1e4 ÷ 2');
    assert.throws(() => parseGemmaConfig({ ...GEMMA3, rope_parameters: { rope_type: 'linear', factor: 8 } }), refused('CONFIG_INVALID', /keyed by layer type/));
  });

  test("embeddings × √hidden as transformers' float32 buffer holds it: fround(√1152) = 33.941123962402344 (a bfloat16 model: 34)", () => {
    assert.equal(parseGemmaConfig({ ...GEMMA3, hidden_size: 1152 }).embedScale, 33.941123962402344);
    assert.equal(parseGemmaConfig(GEMMA2).embedScale, 4);
  });

  test('refused by name: other activations, bidirectional attention, sliding layers without a window, multimodal gemma3', () => {
    assert.throws(() => parseGemmaConfig({ ...GEMMA2, hidden_activation: 'silu' }), refused('UNSUPPORTED_OPTION', /hidden_activation 'silu' is not supported \(gelu_pytorch_tanh, gelu_new\)/));
    assert.throws(() => parseGemmaConfig({ ...GEMMA3, use_bidirectional_attention: true }), refused('UNSUPPORTED_OPTION', /use_bidirectional_attention/));
    assert.throws(() => parseGemmaConfig({ ...GEMMA2, sliding_window: null }), refused('CONFIG_INVALID', /sliding layers need a positive integer sliding_window, got null/));
    assert.throws(() => architectureFor({ model_type: 'gemma3', text_config: GEMMA3 }), refused('UNSUPPORTED_MODEL', /multimodal .*gemma3_text.*docs\/models\.md/));
    assert.throws(() => parseHfConfig({ model_type: 'gemma3', text_config: GEMMA3 }, 'm/config.json'), (e: unknown) => e instanceof FormatError && e.code === 'CONFIG_UNSUPPORTED_MODEL' && /Gemma3ForConditionalGeneration/.test(e.message));
  });

  test("registered: PEFT's default targets q_proj and v_proj, max_position_embeddings as the sequence limit", () => {
    const arch = architectureFor(GEMMA3);
    assert.deepEqual([arch.defaultTargetModules, arch.maxSeqLen?.(GEMMA3)], [['q_proj', 'v_proj'], { value: 64, key: 'max_position_embeddings' }]);
    assert.equal(architectureFor(GEMMA2), arch);
  });
});

describe('gemma checkpoint tensors the built model does not read', () => {
  const build = (config: Record<string, unknown>, tensors: ReadonlyMap<string, readonly number[]>): unknown => architectureFor(config).build({ config, tensors, lora: loraSettings(), task: 'causal-lm', training: true });
  const unused = (re: RegExp): (e: unknown) => boolean => (e) => e instanceof ModelError && e.code === 'TENSOR_UNUSED' && re.test(e.message);

  test('a Gemma 3 checkpoint labelled gemma2: its q/k norms are named and gemma3_text suggested', () => {
    assert.throws(() => build(GEMMA2, familyShapes({ ...GEMMA2, model_type: 'gemma3_text' })), unused(/8 tensors .*'model\.layers\.0\.self_attn\.q_norm\.weight'.*"model_type": "gemma3_text"/));
  });

  test("a stored lm_head beside tied embeddings, and a multimodal checkpoint's vision tower", () => {
    const tied = new Map([...familyShapes(GEMMA3), ['lm_head.weight', [40, 16]]]);
    assert.throws(() => build(GEMMA3, tied), unused(/'lm_head\.weight'.*tie_word_embeddings, true by default for Gemma/));
    const vision = new Map([...familyShapes(GEMMA3), ['vision_tower.vision_model.post_layernorm.weight', [8]]]);
    assert.throws(() => build(GEMMA3, vision), unused(/vision_tower.*multimodal Gemma 3 checkpoint/));
  });
});
