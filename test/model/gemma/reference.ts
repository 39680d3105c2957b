// Independent float64 reference of HF's Gemma2ForCausalLM and Gemma3ForCausalLM, written with plain
// loops from transformers' modelling code (modeling_gemma2.py, modeling_gemma3.py) on the ops of the
// Llama reference's tape (and its batch set-up, LoRA branches and embedding lookup) plus Gemma's own
// (scaled embeddings, GeGLU, soft cap): nothing here uses src/graph or src/model. One sequence at a
// time; the padding mask hides keys whose mask is 0. Gives the loss, the logits, and (by the tape's
// hand-written backward) the gradient of the loss with respect to every LoRA factor.
import { causalLmBatch, embedRows, loraBranch, type RefDecoderDims, type RefLora, type RefResult, type RefWeights } from '../llama/reference.js';
import { Tape, type LoraBranch, type Node, type WeightData } from '../llama/tape.js';

/** The numbers of a Gemma model, spelled out by the test. */
export interface RefGemmaConfig extends RefDecoderDims {
  readonly headDim: number;
  /** Attention scores are multiplied by `queryPreAttnScalar^-0.5`. */
  readonly queryPreAttnScalar: number;
  /** Gemma 2: `cap·tanh(score/cap)` on the attention scores. */
  readonly attnSoftcap?: number;
  /** Gemma 2: `cap·tanh(logit/cap)` on the logits. */
  readonly finalSoftcap?: number;
  /** Gemma 3: RMSNorm (1 + w) of each q and k head. */
  readonly qkNorm: boolean;
  /** Sliding window width, and per layer whether it slides. */
  readonly window: number;
  readonly sliding: readonly boolean[];
  /** RoPE of full-attention and of sliding layers: inverse frequencies (headDim / 2) and cos/sin factor. */
  readonly ropeFull: { readonly invFreq: readonly number[]; readonly scale: number };
  readonly ropeSliding: { readonly invFreq: readonly number[]; readonly scale: number };
}

function get(w: RefWeights, key: string): WeightData {
  const v = w.get(key);
  if (v === undefined) throw new Error(`gemma reference: no weight ${key}`);
  return v;
}

/** Gemma's RMSNorm multiplies by `1 + w`: the weight as the tape's plain RMSNorm takes it. */
function onePlus(w: WeightData): Float64Array {
  return Float64Array.from(w, (v) => 1 + v);
}

/** `k·x`. */
function scaled(tape: Tape, x: Node, k: number): Node {
  return tape.node(x.value.map((v) => k * v), x.rows, x.cols, (self) => {
    x.grad ??= new Float64Array(x.value.length);
    for (let i = 0; i < x.value.length; i++) x.grad[i] += k * self.grad![i];
  });
}

/** `c·tanh(x/c)` (Gemma 2's final_logit_softcapping). */
function softcap(tape: Tape, x: Node, c: number): Node {
  const t = x.value.map((v) => Math.tanh(v / c));
  return tape.node(t.map((v) => c * v), x.rows, x.cols, (self) => {
    x.grad ??= new Float64Array(x.value.length);
    for (let i = 0; i < t.length; i++) x.grad[i] += self.grad![i] * (1 - t[i] * t[i]);
  });
}

const GELU_A = Math.sqrt(2 / Math.PI);

/** `gelu_pytorch_tanh(gate)·up`: 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))·u. */
function geglu(tape: Tape, gate: Node, up: Node): Node {
  const t = gate.value.map((g) => Math.tanh(GELU_A * (g + 0.044715 * g ** 3)));
  const act = gate.value.map((g, i) => 0.5 * g * (1 + t[i]));
  return tape.node(act.map((a, i) => a * up.value[i]), gate.rows, gate.cols, (self) => {
    gate.grad ??= new Float64Array(gate.value.length);
    up.grad ??= new Float64Array(up.value.length);
    for (let i = 0; i < act.length; i++) {
      const g = gate.value[i];
      const dAct = 0.5 * (1 + t[i]) + 0.5 * g * (1 - t[i] * t[i]) * GELU_A * (1 + 3 * 0.044715 * g * g);
      gate.grad[i] += self.grad![i] * up.value[i] * dAct;
      up.grad[i] += self.grad![i] * act[i];
    }
  });
}

/** Logits, mean next-token loss over next tokens that are not padding and not labelled −100, and the LoRA gradients. */
export function gemmaReference(cfg: RefGemmaConfig, w: RefWeights, lora: RefLora | undefined, ids: number[][], mask: number[][], labels: number[][]): RefResult {
  const { hidden: d, heads, kvHeads, headDim: hd, vocab, intermediate: ff } = cfg;
  const qDim = heads * hd;
  const kvDim = kvHeads * hd;
  // transformers keeps √hidden in a float32 buffer and casts it to the weights' dtype: fround(√d)
  // for a float32 or float64 model.
  const embedScale = Math.fround(Math.sqrt(d));
  const { batch, seq, logits, grads, targets, count } = causalLmBatch(lora, ids, mask, labels, vocab);
  const norms = new Map<string, Float64Array>();
  const normWeight = (key: string): Float64Array => {
    if (!norms.has(key)) norms.set(key, onePlus(get(w, key)));
    return norms.get(key)!;
  };
  let loss = 0;
  for (let b = 0; b < batch; b++) {
    const tape = new Tape();
    const branch = (path: string): LoraBranch | undefined => loraBranch(lora, grads, path, b * seq);
    const norm = (x: Node, key: string): Node => tape.rmsNorm(x, normWeight(key), cfg.eps);
    const embed = get(w, 'model.embed_tokens.weight');
    let h: Node = scaled(tape, tape.node(embedRows(embed, ids[b], d), seq, d), embedScale);
    for (let l = 0; l < cfg.layers; l++) {
      const p = `model.layers.${l}`;
      const sliding = cfg.sliding[l];
      const lin = (x: Node, name: string, outF: number): Node => tape.linear(x, get(w, `${p}.${name}.weight`), outF, undefined, branch(`${p}.${name}`));
      const visible = (i: number, j: number): boolean => j <= i && mask[b][j] !== 0 && (!sliding || i - j < cfg.window);
      const x = norm(h, `${p}.input_layernorm.weight`);
      let q = lin(x, 'self_attn.q_proj', qDim);
      let k = lin(x, 'self_attn.k_proj', kvDim);
      const v = lin(x, 'self_attn.v_proj', kvDim);
      if (cfg.qkNorm) {
        q = norm(q, `${p}.self_attn.q_norm.weight`);
        k = norm(k, `${p}.self_attn.k_norm.weight`);
      }
      const rope = sliding ? cfg.ropeSliding : cfg.ropeFull;
      q = tape.rope(q, hd, rope.invFreq, rope.scale);
      k = tape.rope(k, hd, rope.invFreq, rope.scale);
      const attn = tape.attention(q, k, v, hd, visible, { scale: cfg.queryPreAttnScalar ** -0.5, ...(cfg.attnSoftcap !== undefined ? { softcap: cfg.attnSoftcap } : {}) });
      h = tape.add(h, norm(lin(attn, 'self_attn.o_proj', d), `${p}.post_attention_layernorm.weight`));
      const y = norm(h, `${p}.pre_feedforward_layernorm.weight`);
      const mlp = lin(geglu(tape, lin(y, 'mlp.gate_proj', ff), lin(y, 'mlp.up_proj', ff)), 'mlp.down_proj', d);
      h = tape.add(h, norm(mlp, `${p}.post_feedforward_layernorm.weight`));
    }
    const hn = norm(h, 'model.norm.weight');
    let out = tape.linear(hn, cfg.tie ? embed : get(w, 'lm_head.weight'), vocab, undefined, branch('lm_head'));
    if (cfg.finalSoftcap !== undefined) out = softcap(tape, out, cfg.finalSoftcap);
    logits.set(out.value, b * seq * vocab);
    loss += tape.crossEntropy(out, targets[b], count);
    tape.backward();
  }
  return { logits, loss, grads };
}
