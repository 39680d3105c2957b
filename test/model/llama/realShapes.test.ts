// Qwen3-0.6B (plain, and with its model card's YaRN block), Phi-3-mini-4k and Phi-4-mini at their
// real widths and head layouts: the public config.json of each (2 layers instead of 28/32), random
// weights held as bf16 values; YaRN's frequencies and attention factor in the reference are
// transformers' own (test/fixtures/rope/references.json). The trainer's
// graph (float32, onnxruntime) against the float64 reference (reference.ts, its own backward): the
// loss, the logits and the gradient of every LoRA factor, on a padded batch of 2 × 4 tokens.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLlama } from '../../../src/model/llama/build.js';
import { bf16Checkpoint, familyShapes } from './checkpoints.js';
import { checkRealShapes, loraSettings } from './harness.js';
import { defaultInvFreq, llamaReference, longRopeRef, type RefLlamaConfig } from './reference.js';

/** Qwen/Qwen3-0.6B config.json. */
const QWEN3_0_6B = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.51.0',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** microsoft/Phi-3-mini-4k-instruct config.json (without auto_map). */
const PHI3_MINI_4K = {
  architectures: ['Phi3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 1,
  embd_pdrop: 0.0,
  eos_token_id: 32000,
  hidden_act: 'silu',
  hidden_size: 3072,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 4096,
  model_type: 'phi3',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  original_max_position_embeddings: 4096,
  pad_token_id: 32000,
  resid_pdrop: 0.0,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  sliding_window: 2047,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.40.2',
  use_cache: true,
  vocab_size: 32064,
};

const PHI4_LONG_FACTOR = [
  1,
  1.118320672,
  1.250641126,
  1.398617824,
  1.564103225,
  1.74916897,
  1.956131817,
  2.187582649,
  2.446418898,
  2.735880826,
  3.059592084,
  3.421605075,
  3.826451687,
  4.279200023,
  4.785517845,
  5.351743533,
  5.984965424,
  6.693110555,
  7.485043894,
  8.370679318,
  9.36110372,
  10.4687158,
  11.70738129,
  13.09260651,
  14.64173252,
  16.37415215,
  18.31155283,
  20.47818807,
  22.90118105,
  25.61086418,
  28.64115884,
  32.03,
  32.1,
  32.13,
  32.23,
  32.6,
  32.61,
  32.64,
  32.66,
  32.7,
  32.71,
  32.93,
  32.97,
  33.28,
  33.49,
  33.5,
  44.16,
  47.77,
];

/** microsoft/Phi-4-mini-instruct config.json: partial RoPE (96 of 128) with LongRoPE, tied embeddings. */
const PHI4_MINI = {
  architectures: ['Phi3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 199999,
  embd_pdrop: 0.0,
  eos_token_id: 199999,
  full_attn_mod: 1,
  hidden_act: 'silu',
  hidden_size: 3072,
  initializer_range: 0.02,
  intermediate_size: 8192,
  interpolate_factor: 1,
  lm_head_bias: false,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'phi3',
  num_attention_heads: 24,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  original_max_position_embeddings: 4096,
  pad_token_id: 199999,
  partial_rotary_factor: 0.75,
  resid_pdrop: 0.0,
  rms_norm_eps: 1e-5,
  rope_scaling: { long_factor: PHI4_LONG_FACTOR, short_factor: new Array<number>(48).fill(1.0), type: 'longrope' },
  rope_theta: 10000.0,
  sliding_window: 262144,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.45.0',
  use_cache: true,
  vocab_size: 200064,
};

const IDS = [[3, 17, 29, 5], [7, 1000, 22, 2]];
const MASK = [[1, 1, 1, 1], [1, 1, 1, 0]];
const LABELS = [[3, 17, 29, 5], [7, 1000, 22, -100]];

interface Case {
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly targets: readonly string[];
  readonly ref: RefLlamaConfig;
}

function refOf(config: Record<string, unknown>): Omit<RefLlamaConfig, 'rope'> {
  const n = (k: string): number => config[k] as number;
  return {
    hidden: n('hidden_size'),
    layers: n('num_hidden_layers'),
    heads: n('num_attention_heads'),
    kvHeads: n('num_key_value_heads'),
    intermediate: n('intermediate_size'),
    vocab: n('vocab_size'),
    eps: n('rms_norm_eps'),
    theta: n('rope_theta'),
    tie: config.tie_word_embeddings === true,
    qkvBias: false,
    ...(typeof config.head_dim === 'number' ? { headDim: config.head_dim } : {}),
    qkNorm: config.model_type === 'qwen3',
    fused: config.model_type === 'phi3',
  };
}

const QWEN3_2L = { ...QWEN3_0_6B, num_hidden_layers: 2 };
const PHI3_2L = { ...PHI3_MINI_4K, num_hidden_layers: 2 };
// Phi-4-mini's 200064 × 3072 embedding alone is 2.5 GB in float32; its vocabulary is cut to Phi-3's
// 32064 rows here (widths, heads, RoPE and tying as published).
const PHI4_2L = { ...PHI4_MINI, num_hidden_layers: 2, vocab_size: 32064 };

// Qwen3's model card extends its context with YaRN by adding this block to config.json.
const QWEN3_YARN_2L = { ...QWEN3_2L, vocab_size: 32064, rope_scaling: { rope_type: 'yarn', factor: 4.0, original_max_position_embeddings: 32768 } };
const here = dirname(fileURLToPath(import.meta.url));
const qwen3Yarn = (JSON.parse(readFileSync(join(here, '..', '..', 'fixtures', 'rope', 'references.json'), 'utf8')) as { cases: { name: string; invFreq: number[]; attentionScaling: number }[] })
  .cases.find((c) => c.name.startsWith('Qwen3-0.6B with the yarn block'))!;

const CASES: readonly Case[] = [
  { name: 'Qwen3-0.6B (hidden 1024, 16 q / 8 kv heads of head_dim 128, q/k norms, tied, full 151936 vocab)', config: QWEN3_2L, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    ref: { ...refOf(QWEN3_2L), rope: { invFreq: defaultInvFreq(128, 1000000), scale: 1 } } },
  { name: 'Qwen3-0.6B+YaRN (factor 4 from 32768 positions: low frequencies ÷ 4, cos/sin × 1.139; vocab cut to 32064)', config: QWEN3_YARN_2L, targets: ['q_proj', 'v_proj', 'o_proj'],
    ref: { ...refOf(QWEN3_YARN_2L), rope: { invFreq: qwen3Yarn.invFreq, scale: qwen3Yarn.attentionScaling } } },
  { name: 'Phi-3-mini-4k (hidden 3072, 32 heads, fused qkv_proj [9216, 3072] and gate_up_proj [16384, 3072], 32064 vocab)', config: PHI3_2L, targets: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'],
    ref: { ...refOf(PHI3_2L), window: 2047, rope: { invFreq: defaultInvFreq(96, 10000), scale: 1 } } },
  { name: 'Phi-4-mini (24 q / 8 kv heads, partial RoPE 96 of 128, LongRoPE attention factor, tied; vocab cut to 32064)', config: PHI4_2L, targets: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'],
    ref: { ...refOf(PHI4_2L), window: 262144, rope: longRopeRef(PHI4_2L, 96, 4) } },
];

// Measured (float32 graph vs float64 reference, three seeds' worth of runs): loss ≤ 2.4e-7 relative,
// logits and each LoRA gradient ≤ 4.6e-6 of the tensor's largest magnitude. The bounds are ~10×
// that, for other CPUs' summation orders; a wrong transpose, split order or RoPE dim is O(1).
const LOSS_RTOL = 2e-6;
const TENSOR_TOL = 5e-5;

describe('real widths and head layouts, 2 layers, bf16 weights: float32 graph vs float64 reference', () => {
  for (const c of CASES) {
    test(c.name, { timeout: 120_000 }, async (t) => {
      const weights = bf16Checkpoint(c.config);
      const lora = loraSettings({ targetModules: [...c.targets], r: 2, alpha: 4 });
      const model = buildLlama({ config: c.config, tensors: familyShapes(c.config), lora, task: 'causal-lm', training: false, seqLen: 4 });
      const r = await checkRealShapes(model, weights, { ids: IDS, mask: MASK, labels: LABELS }, (factors) => llamaReference(c.ref, weights, { r: 2, scaling: 2, factors }, IDS, MASK, LABELS), { lossRtol: LOSS_RTOL, tensorTol: TENSOR_TOL });
      t.diagnostic(`${c.name.split(' ')[0]}: loss ${r.loss.toFixed(6)}, loss error ${r.lossErr.toExponential(2)}, worst tensor error ${r.worst.toExponential(2)}`);
      assert.deepEqual(r.errors, []);
      assert.equal(model.modules.length, 2 * c.targets.length);
    });
  }
});
