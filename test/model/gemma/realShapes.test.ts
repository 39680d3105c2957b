// Gemma-2-2B, Gemma-3-1B and Gemma-3-270M at their real widths and head layouts: the public
// config.json of each (fewer layers), random weights held as bf16 values, RoPE frequencies as
// transformers computes them (test/fixtures/rope/references.json). The trainer's graph (float32,
// onnxruntime) against the float64 reference (reference.ts, its own backward): the loss, the
// logits and the gradient of every LoRA factor, on a padded batch of 2 × 4 tokens.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildGemma } from '../../../src/model/gemma/build.js';
import { bf16Checkpoint, familyShapes } from '../llama/checkpoints.js';
import { checkRealShapes, loraSettings } from '../llama/harness.js';
import { GEMMA2_2B, GEMMA3_1B, GEMMA3_270M } from './configs.js';
import { gemmaReference, type RefGemmaConfig } from './reference.js';

const here = dirname(fileURLToPath(import.meta.url));
const ropeRefs = (JSON.parse(readFileSync(join(here, '..', '..', 'fixtures', 'rope', 'references.json'), 'utf8')) as { cases: { name: string; invFreq: number[]; attentionScaling: number }[] }).cases;
/** transformers' RoPE of the fixture case whose name starts with `prefix`. */
function ropeOf(prefix: string): { invFreq: number[]; scale: number } {
  const c = ropeRefs.find((r) => r.name.startsWith(prefix));
  if (c === undefined) throw new Error(`no RoPE reference '${prefix}'`);
  return { invFreq: c.invFreq, scale: c.attentionScaling };
}

const IDS = [[2, 17, 29, 5], [2, 1000, 22, 7]];
const MASK = [[1, 1, 1, 1], [1, 1, 1, 0]];
const LABELS = [[2, 17, 29, 5], [2, 1000, 22, -100]];
const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function refOf(config: Record<string, unknown>, sliding: boolean[], ropeFull: string, ropeSliding: string): RefGemmaConfig {
  const n = (k: string): number => config[k] as number;
  const cap = (k: string): number | undefined => (typeof config[k] === 'number' ? (config[k] as number) : undefined);
  const gemma2 = config.model_type === 'gemma2';
  return {
    hidden: n('hidden_size'),
    layers: n('num_hidden_layers'),
    heads: n('num_attention_heads'),
    kvHeads: n('num_key_value_heads'),
    headDim: n('head_dim'),
    intermediate: n('intermediate_size'),
    vocab: n('vocab_size'),
    eps: n('rms_norm_eps'),
    tie: true,
    queryPreAttnScalar: n('query_pre_attn_scalar'),
    ...(gemma2 ? { attnSoftcap: cap('attn_logit_softcapping'), finalSoftcap: cap('final_logit_softcapping') } : {}),
    qkNorm: !gemma2,
    window: n('sliding_window'),
    sliding,
    ropeFull: ropeOf(ropeFull),
    ropeSliding: ropeOf(ropeSliding),
  };
}

// Gemma-2-2B's 256000 × 2304 and Gemma-3-1B's 262144 × 1152 embeddings are cut to 32768 rows here
// (widths, heads, RoPE, caps and tying as published); Gemma-3-270M keeps its full 262144 vocabulary.
const GEMMA2_2L = { ...GEMMA2_2B, num_hidden_layers: 2, vocab_size: 32768 };
// Two layers of Gemma-3-1B's pattern would both slide: pattern 2 makes layer 1 a full-attention layer.
const GEMMA3_1B_2L = { ...GEMMA3_1B, num_hidden_layers: 2, sliding_window_pattern: 2, vocab_size: 32768 };
const GEMMA3_270M_6L = { ...GEMMA3_270M, num_hidden_layers: 6, layer_types: GEMMA3_270M.layer_types.slice(0, 6) };

const CASES: readonly { name: string; config: Record<string, unknown>; ref: RefGemmaConfig }[] = [
  { name: 'Gemma-2-2B (hidden 2304, 8 q / 4 kv heads of 256, soft caps 50 and 30, sliding + full layer; vocab cut to 32768)', config: GEMMA2_2L, ref: refOf(GEMMA2_2L, [true, false], 'Gemma-2-2B', 'Gemma-2-2B') },
  { name: 'Gemma-3-1B (hidden 1152, 4 q / 1 kv head of 256, q/k norms, local base 1e4 and global 1e6; vocab cut to 32768)', config: GEMMA3_1B_2L, ref: refOf(GEMMA3_1B_2L, [true, false], 'Gemma-3-1B full', 'Gemma-3-1B sliding') },
  { name: 'Gemma-3-270M (hidden 640, its layer_types: 5 sliding layers and a full one, full 262144 vocabulary)', config: GEMMA3_270M_6L,
    ref: refOf(GEMMA3_270M_6L, [true, true, true, true, true, false], 'Gemma-3-1B full', 'Gemma-3-1B sliding') },
];

// Measured (float32 graph vs float64 reference): loss ≤ 2.6e-7 relative, logits and each LoRA
// gradient ≤ 1.1e-5 of the tensor's largest magnitude. The bounds are ~10× that, for other CPUs'
// summation orders; a wrong norm offset, cap, window or RoPE base is O(1).
const LOSS_RTOL = 3e-6;
const TENSOR_TOL = 1e-4;

describe('Gemma at real widths and head layouts, bf16 weights: float32 graph vs float64 reference', () => {
  for (const c of CASES) {
    test(c.name, { timeout: 180_000 }, async (t) => {
      const weights = bf16Checkpoint(c.config);
      const lora = loraSettings({ targetModules: TARGETS, r: 2, alpha: 4 });
      const model = buildGemma({ config: c.config, tensors: familyShapes(c.config), lora, task: 'causal-lm', training: false, seqLen: 4 });
      const r = await checkRealShapes(model, weights, { ids: IDS, mask: MASK, labels: LABELS }, (factors) => gemmaReference(c.ref, weights, { r: 2, scaling: 2, factors }, IDS, MASK, LABELS), { lossRtol: LOSS_RTOL, tensorTol: TENSOR_TOL });
      t.diagnostic(`${c.name.split(' ')[0]}: loss ${r.loss.toFixed(6)}, loss error ${r.lossErr.toExponential(2)}, worst tensor error ${r.worst.toExponential(2)}`);
      assert.deepEqual(r.errors, []);
      assert.equal(model.modules.length, c.ref.layers * TARGETS.length);
    });
  }
});
