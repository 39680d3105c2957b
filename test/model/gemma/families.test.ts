// Gemma 2 and Gemma 3 text graphs at small widths against the float64 reference (reference.ts):
// (1 + w) RMSNorm and sandwich norms, embeddings × √hidden, GeGLU, query_pre_attn_scalar,
// attention and final soft caps (Gemma 2), per-head q/k norms and a second RoPE base on sliding
// layers (Gemma 3), alternating sliding windows shorter than the sequence, padding, tied and untied
// heads. Float64 graphs agree with the reference to round-off in the loss, the logits and every
// LoRA gradient (fixed and symbolic sequence length); the reference's hand-written backward is
// itself checked by finite differences, and each Gemma feature is shown to change the loss.
// Score scales are 1/8 and 1/4 (query_pre_attn_scalar 64 and 16): onnxruntime fuses the scale
// into a float32 attribute even in float64 graphs, so only scales exact in float32 give round-off.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildGemma } from '../../../src/model/gemma/build.js';
import { smallCheckpoint } from '../llama/checkpoints.js';
import { checkReferenceBackward, IDS, LABELS, MASK, runFamily, type Family } from '../llama/familyCheck.js';
import { assertMatchesReference, loraSettings } from '../llama/harness.js';
import { defaultInvFreq } from '../llama/reference.js';
import { gemmaReference, type RefGemmaConfig } from './reference.js';

/** The widths both small Gemmas share: hidden 16, 3 layers, heads of 16, intermediate 24, vocab 40, window 3. */
const SMALL = {
  hidden_size: 16,
  num_hidden_layers: 3,
  head_dim: 16,
  intermediate_size: 24,
  vocab_size: 40,
  max_position_embeddings: 32,
  rms_norm_eps: 1e-6,
  hidden_activation: 'gelu_pytorch_tanh',
  sliding_window: 3,
};
/** The reference's view of SMALL. */
const SMALL_REF = { hidden: 16, layers: 3, headDim: 16, intermediate: 24, vocab: 40, eps: 1e-6, window: 3 };

/** Gemma 2's layout: 3 layers (sliding, full, sliding), window 3, both soft caps; tied by default. */
const GEMMA2_SMALL = {
  model_type: 'gemma2',
  ...SMALL,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  query_pre_attn_scalar: 64,
  attn_logit_softcapping: 1.0,
  final_logit_softcapping: 3.0,
  rope_theta: 10000.0,
};

/** Gemma 3's layout: q/k norms, one full layer in three, global RoPE 1e6 with linear × 8, local base 1e4, an untied head. */
const GEMMA3_SMALL = {
  model_type: 'gemma3_text',
  ...SMALL,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  query_pre_attn_scalar: 16,
  sliding_window_pattern: 3,
  rope_theta: 1000000.0,
  rope_local_base_freq: 10000.0,
  rope_scaling: { rope_type: 'linear', factor: 8.0 },
  final_logit_softcapping: null,
  attn_logit_softcapping: null,
  tie_word_embeddings: false,
};

const ALL_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head'];

const DATA = { ids: IDS, mask: MASK, labels: LABELS };

function gemma2Ref(): RefGemmaConfig {
  const rope = { invFreq: defaultInvFreq(16, 10000), scale: 1 };
  return {
    ...SMALL_REF,
    heads: 4,
    kvHeads: 2,
    tie: true,
    queryPreAttnScalar: 64,
    attnSoftcap: 1,
    finalSoftcap: 3,
    qkNorm: false,
    sliding: [true, false, true],
    ropeFull: rope,
    ropeSliding: rope,
  };
}

function gemma3Ref(): RefGemmaConfig {
  return {
    ...SMALL_REF,
    heads: 2,
    kvHeads: 1,
    tie: false,
    queryPreAttnScalar: 16,
    qkNorm: true,
    sliding: [true, true, false],
    ropeFull: { invFreq: defaultInvFreq(16, 1e6).map((f) => f / 8), scale: 1 },
    ropeSliding: { invFreq: defaultInvFreq(16, 1e4), scale: 1 },
  };
}

/** The graph of src/model/gemma and the float64 reference. */
const GEMMA: Family<RefGemmaConfig> = { build: buildGemma, reference: gemmaReference };

// Float64 graph and float64 reference: the same sums in another order, so round-off only.
const EXACT = { rtol: 1e-9, atol: 1e-11 };

describe('gemma2 at small widths (4 heads of 16 over 2 kv heads, window 3 on layers 0 and 2, soft caps 1 and 3, tied) vs the float64 reference', () => {
  test('LoRA on all seven projections and lm_head, fixed seq 6: loss, logits and LoRA gradients to 1e-9', async () => {
    const run = await runFamily(GEMMA, GEMMA2_SMALL, gemma2Ref(), loraSettings({ targetModules: ALL_TARGETS }), DATA, { seqLen: 6 });

    assert.equal(run.model.modules.length, 3 * 7 + 1);
    assert.ok(run.model.frozen.some((f) => f.key === 'model.layers.2.post_feedforward_layernorm.weight'));
    assertMatchesReference(run, EXACT);
  });

  test("symbolic seq (the trainer's graph), PEFT's default targets q_proj and v_proj", async () => {
    const run = await runFamily(GEMMA, GEMMA2_SMALL, gemma2Ref(), loraSettings(), DATA);

    assert.equal(run.model.modules.length, 6);
    assertMatchesReference(run, EXACT);
  });
});

describe('gemma3_text at small widths (q/k norms, 2 heads over 1 kv head, sliding layers 0–1 with base 1e4, full layer 2 with 1e6 / 8, untied) vs the float64 reference', () => {
  test('LoRA on all seven projections and lm_head, fixed and symbolic seq: to 1e-9', async () => {
    const lora = loraSettings({ targetModules: ALL_TARGETS });
    const run = await runFamily(GEMMA, GEMMA3_SMALL, gemma3Ref(), lora, DATA, { seqLen: 6 });

    assert.ok(run.model.frozen.some((f) => f.key === 'model.layers.0.self_attn.q_norm.weight'));
    assert.ok(run.model.frozen.some((f) => f.key === 'lm_head.weight'));
    assertMatchesReference(run, EXACT);
    assertMatchesReference(await runFamily(GEMMA, GEMMA3_SMALL, gemma3Ref(), lora, DATA), EXACT);
  });
});

describe('each Gemma feature changes the result at these sizes (so matching the reference pins it)', () => {
  const loss = (config: Record<string, unknown>, ref: RefGemmaConfig): number => gemmaReference(ref, smallCheckpoint(config), undefined, IDS, MASK, LABELS).loss;
  const differs = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) > 1e-3, `${what}: loss ${a} vs ${b}`);

  test('gemma2: the attention soft cap, the final soft cap, the sliding window', () => {
    const base = loss(GEMMA2_SMALL, gemma2Ref());
    differs(base, loss(GEMMA2_SMALL, { ...gemma2Ref(), attnSoftcap: undefined }), 'no attention cap');
    differs(base, loss(GEMMA2_SMALL, { ...gemma2Ref(), finalSoftcap: undefined }), 'no final cap');
    differs(base, loss(GEMMA2_SMALL, { ...gemma2Ref(), window: 32 }), 'no window');
  });

  test('gemma3: the q/k norms, the local RoPE base, the linear scaling of the global one', () => {
    const base = loss(GEMMA3_SMALL, gemma3Ref());
    differs(base, loss(GEMMA3_SMALL, { ...gemma3Ref(), qkNorm: false }), 'no q/k norms');
    differs(base, loss(GEMMA3_SMALL, { ...gemma3Ref(), ropeSliding: gemma3Ref().ropeFull }), 'the global RoPE on sliding layers');
    differs(base, loss(GEMMA3_SMALL, { ...gemma3Ref(), ropeFull: { invFreq: defaultInvFreq(16, 1e6), scale: 1 } }), 'no linear scaling');
  });
});

describe("the reference's backward (finite differences of its own loss, eps 1e-6, rtol 1e-6, atol 1e-9)", () => {
  for (const [name, config, ref] of [['gemma2', GEMMA2_SMALL, gemma2Ref()], ['gemma3_text', GEMMA3_SMALL, gemma3Ref()]] as const) {
    test(`${name}: d loss / d A and d B at coordinates of every module type, lm_head included`, () => checkReferenceBackward(GEMMA, config, ref, ALL_TARGETS, (path) => /layers\.0\.|lm_head/.test(path)));
  }
});
