// Qwen3 and Phi-3 graphs at small widths against the float64 reference (reference.ts): q/k RMSNorm
// per head with head_dim ≠ hidden/heads, fused qkv_proj/gate_up_proj (gate rows first), partial
// RoPE and LongRoPE (short and long regime, fixed and symbolic sequence length), Phi-3's sliding
// window. Float64 graphs agree with the reference to round-off in the loss, the logits and every
// LoRA gradient; the reference's hand-written backward is itself checked by finite differences.
// Head dims are 16 here: onnxruntime fuses the 1/√head_dim score scale into a float32 attribute
// (FusedMatMul alpha) even in float64 graphs, so only dims whose 1/√d is exact in float32 (4, 16,
// 64, 256) give float64 graphs that agree to round-off (1/√6 costs ~1e-9 relative).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLlama } from '../../../src/model/llama/build.js';
import { assertClose } from '../../graph/gradCheck.js';
import { smallCheckpoint } from './checkpoints.js';
import { QWEN3_SMALL, SMALL_DECODER } from './configs.js';
import { checkReferenceBackward, IDS, LABELS, MASK, runFamily, type Family } from './familyCheck.js';
import { assertMatchesReference, loraSettings } from './harness.js';
import { defaultInvFreq, llamaReference, longRopeRef, type RefLlamaConfig } from './reference.js';

const PHI3_SMALL = {
  model_type: 'phi3',
  ...SMALL_DECODER,
  original_max_position_embeddings: 4,
  partial_rotary_factor: 0.75,
  sliding_window: 5,
  tie_word_embeddings: false,
  rope_scaling: { type: 'longrope', short_factor: [1, 1.2, 1.5, 2, 2.5, 3], long_factor: [2, 3, 5, 8, 13, 21] },
};

const QWEN3_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const PHI3_TARGETS = ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'];

/** The graph of src/model/llama and the float64 reference. */
const LLAMA: Family<RefLlamaConfig> = { build: buildLlama, reference: llamaReference };

function qwen3Ref(): RefLlamaConfig {
  return { hidden: 16, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 24, vocab: 40, eps: 1e-6, theta: 1000000, tie: true, qkvBias: false, qkNorm: true };
}

/** Phi-3's reference for a `seqLen`-token batch: LongRoPE picks its factors by the length. */
function phi3Ref(seqLen: number): RefLlamaConfig {
  return {
    hidden: 32,
    layers: 2,
    heads: 2,
    kvHeads: 1,
    intermediate: 20,
    vocab: 40,
    eps: 1e-5,
    theta: 10000,
    tie: false,
    qkvBias: false,
    fused: true,
    window: 5,
    rope: longRopeRef(PHI3_SMALL, 12, seqLen),
  };
}

// Float64 graph and float64 reference: the same sums in another order, so round-off only.
const EXACT = { rtol: 1e-9, atol: 1e-11 };

describe('qwen3 at small widths (hidden 16, 4 heads of head_dim 16, 2 kv heads, tied) vs the float64 reference', () => {
  test('q_norm/k_norm per head, LoRA on all seven projections: loss, logits and LoRA gradients to 1e-9', async () => {
    const run = await runFamily(LLAMA, QWEN3_SMALL, qwen3Ref(), loraSettings({ targetModules: QWEN3_TARGETS }), { ids: IDS, mask: MASK, labels: LABELS });
    assert.equal(run.model.modules.length, 14);
    assert.deepEqual(run.model.modules.find((m) => m.path === 'model.layers.0.self_attn.o_proj')?.inFeatures, 64);
    assert.ok(run.model.frozen.some((f) => f.key === 'model.layers.1.self_attn.k_norm.weight'));
    assertMatchesReference(run, EXACT);
  });

  test('the q/k norms change the result: the reference without them differs', async () => {
    const run = await runFamily(LLAMA, QWEN3_SMALL, { ...qwen3Ref(), qkNorm: false }, loraSettings(), { ids: IDS, mask: MASK, labels: LABELS });
    assert.ok(Math.abs(run.loss - run.ref.loss) > 1e-3, `loss ${run.loss} vs ${run.ref.loss} without q/k norms`);
  });
});

describe('phi3 at small widths (fused qkv_proj / gate_up_proj, 2 heads of 16 over 1 kv head, partial RoPE 12 of 16, LongRoPE) vs the float64 reference', () => {
  test('T = 6 > original_max_position_embeddings 4 (long factors), sliding window 5, fixed seq: to 1e-9', async () => {
    const run = await runFamily(LLAMA, PHI3_SMALL, phi3Ref(6), loraSettings({ targetModules: PHI3_TARGETS }), { ids: IDS, mask: MASK, labels: LABELS }, { seqLen: 6 });
    assert.deepEqual(run.model.modules.slice(0, 4).map((m) => [m.path, m.inFeatures, m.outFeatures]), [
      ['model.layers.0.self_attn.qkv_proj', 32, 64],
      ['model.layers.0.self_attn.o_proj', 32, 32],
      ['model.layers.0.mlp.gate_up_proj', 32, 40],
      ['model.layers.0.mlp.down_proj', 20, 32],
    ]);
    assertMatchesReference(run, EXACT);
  });

  test("symbolic seq (the trainer's graph): the long table at T = 6, the short table at T = 3", async () => {
    const lora = loraSettings({ targetModules: PHI3_TARGETS });
    assertMatchesReference(await runFamily(LLAMA, PHI3_SMALL, phi3Ref(6), lora, { ids: IDS, mask: MASK, labels: LABELS }), EXACT);
    const short = { ids: IDS.map((r) => r.slice(0, 3)), mask: MASK.map((r) => r.slice(0, 3)), labels: LABELS.map((r) => r.slice(0, 3)) };
    const run = await runFamily(LLAMA, PHI3_SMALL, phi3Ref(3), lora, short);
    assertMatchesReference(run, EXACT);
    // The short and long factors differ, so the regime matters.
    const wrong = llamaReference(phi3Ref(6), smallCheckpoint(PHI3_SMALL), undefined, short.ids, short.mask, short.labels);
    assert.ok(Math.abs(wrong.loss - run.ref.loss) > 1e-6);
  });

  test("the order of gate_up_proj's halves matters (so matching the reference, gate rows first as transformers' chunk(2), pins it)", () => {
    const weights = smallCheckpoint(PHI3_SMALL);
    const plain = llamaReference(phi3Ref(6), weights, undefined, IDS, MASK, LABELS);
    for (const l of [0, 1]) {
      const key = `model.layers.${l}.mlp.gate_up_proj.weight`;
      const w = weights.get(key)!;
      weights.set(key, Float64Array.from([...w.subarray(20 * 32), ...w.subarray(0, 20 * 32)]));
    }
    const swapped = llamaReference(phi3Ref(6), weights, undefined, IDS, MASK, LABELS);
    assert.ok(Math.abs(swapped.loss - plain.loss) > 1e-3, `loss ${plain.loss} vs ${swapped.loss} with the halves swapped`);
  });
});

describe("the reference's backward (finite differences of its own loss, eps 1e-6, rtol 1e-6, atol 1e-9)", () => {
  for (const [name, config, ref, targets] of [
    ['qwen3', QWEN3_SMALL, qwen3Ref(), QWEN3_TARGETS],
    ['phi3', PHI3_SMALL, phi3Ref(6), PHI3_TARGETS],
  ] as const) {
    test(`${name}: d loss / d A and d B at coordinates of every module type`, () => checkReferenceBackward(LLAMA, config, ref, [...targets]));
  }

  test("the reference's default RoPE is HF's 1/θ^(2i/d)", () => {
    assertClose(defaultInvFreq(8, 10000), [1, 0.1, 0.01, 0.001], 1e-12, 0, 'inv freq');
  });
});
