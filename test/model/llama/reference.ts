// Independent float64 reference of HF's LlamaForCausalLM (and the Mistral sliding window, Qwen2
// biases), written with plain loops from the HF modelling code: nothing here uses src/graph or
// src/model. One sequence at a time; the padding mask hides keys whose mask is 0.

/** The numbers of a tiny Llama-family model, spelled out by the test. */
export interface RefLlamaConfig {
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly intermediate: number;
  readonly vocab: number;
  readonly eps: number;
  readonly theta: number;
  readonly tie: boolean;
  readonly qkvBias: boolean;
  /** Sliding window width (all layers), if any. */
  readonly window?: number;
}

/** LoRA factors by module path: A `[r, in]`, B `[out, r]` row-major, and s = alpha/r. */
export interface RefLora {
  readonly scaling: number;
  readonly r: number;
  readonly factors: ReadonlyMap<string, { readonly a: Float64Array; readonly b: Float64Array }>;
  /** Dropout on the adapter input: keep mask `[batch·seq, in]` per path, and the rate. */
  readonly dropout?: { readonly rate: number; readonly keep: ReadonlyMap<string, Uint8Array> };
}

export type Weights = ReadonlyMap<string, Float64Array>;

function get(w: Weights, key: string): Float64Array {
  const v = w.get(key);
  if (v === undefined) throw new Error(`reference: no weight ${key}`);
  return v;
}

/**
 * `x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ` for x `[n, in]` (W `[out, in]`), with `rowOffset` the index of
 * x's first row in the flattened batch (for the dropout mask).
 */
export function linearRef(x: Float64Array, n: number, inF: number, outF: number, w: Float64Array, bias: Float64Array | undefined, lora: RefLora | undefined, path: string, rowOffset: number): Float64Array {
  const y = new Float64Array(n * outF);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < outF; o++) {
      let acc = bias === undefined ? 0 : bias[o];
      for (let k = 0; k < inF; k++) acc += x[i * inF + k] * w[o * inF + k];
      y[i * outF + o] = acc;
    }
  }
  const f = lora?.factors.get(path);
  if (lora === undefined || f === undefined) return y;
  const keep = lora.dropout?.keep.get(path);
  const rate = lora.dropout?.rate ?? 0;
  for (let i = 0; i < n; i++) {
    const low = new Float64Array(lora.r);
    for (let j = 0; j < lora.r; j++) {
      for (let k = 0; k < inF; k++) {
        const kept = keep === undefined ? 1 : keep[(rowOffset + i) * inF + k] / (1 - rate);
        low[j] += x[i * inF + k] * kept * f.a[j * inF + k];
      }
    }
    for (let o = 0; o < outF; o++) {
      let acc = 0;
      for (let j = 0; j < lora.r; j++) acc += f.b[o * lora.r + j] * low[j];
      y[i * outF + o] += lora.scaling * acc;
    }
  }
  return y;
}

function rmsNormRef(x: Float64Array, n: number, d: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let ms = 0;
    for (let k = 0; k < d; k++) ms += x[i * d + k] ** 2;
    const inv = 1 / Math.sqrt(ms / d + eps);
    for (let k = 0; k < d; k++) y[i * d + k] = w[k] * x[i * d + k] * inv;
  }
  return y;
}

/** HF apply_rotary_pos_emb on one head vector at position t: x·cos + rotate_half(x)·sin. */
export function ropeRef(x: ArrayLike<number>, t: number, hd: number, theta: number): number[] {
  const half = hd / 2;
  const out: number[] = [];
  for (let i = 0; i < hd; i++) {
    const angle = t / theta ** ((2 * (i % half)) / hd);
    const rotated = i < half ? -x[i + half] : x[i - half];
    out.push(x[i] * Math.cos(angle) + rotated * Math.sin(angle));
  }
  return out;
}

/** Logits `[batch, seq, vocab]` and the mean next-token loss over next tokens that are not padding and not labelled −100. */
export function llamaReference(cfg: RefLlamaConfig, w: Weights, lora: RefLora | undefined, ids: number[][], mask: number[][], labels: number[][]): { logits: Float64Array; loss: number } {
  const { hidden: d, heads, kvHeads, vocab } = cfg;
  const hd = d / heads;
  const group = heads / kvHeads;
  const batch = ids.length;
  const seq = ids[0].length;
  const logits = new Float64Array(batch * seq * vocab);
  let lossSum = 0;
  let count = 0;
  for (let b = 0; b < batch; b++) {
    const rowOffset = b * seq;
    let h = new Float64Array(seq * d);
    const embed = get(w, 'model.embed_tokens.weight');
    for (let t = 0; t < seq; t++) for (let k = 0; k < d; k++) h[t * d + k] = embed[ids[b][t] * d + k];
    for (let l = 0; l < cfg.layers; l++) {
      const p = `model.layers.${l}`;
      const lin = (x: Float64Array, name: string, inF: number, outF: number, bias: boolean): Float64Array =>
        linearRef(x, seq, inF, outF, get(w, `${p}.${name}.weight`), bias ? get(w, `${p}.${name}.bias`) : undefined, lora, `${p}.${name}`, rowOffset);
      const x = rmsNormRef(h, seq, d, get(w, `${p}.input_layernorm.weight`), cfg.eps);
      const q = lin(x, 'self_attn.q_proj', d, d, cfg.qkvBias);
      const k = lin(x, 'self_attn.k_proj', d, kvHeads * hd, cfg.qkvBias);
      const v = lin(x, 'self_attn.v_proj', d, kvHeads * hd, cfg.qkvBias);
      const attn = new Float64Array(seq * d);
      for (let head = 0; head < heads; head++) {
        const kvh = Math.floor(head / group);
        const qs = Array.from({ length: seq }, (_, t) => ropeRef(q.subarray(t * d + head * hd, t * d + (head + 1) * hd), t, hd, cfg.theta));
        const ks = Array.from({ length: seq }, (_, t) => ropeRef(k.subarray(t * kvHeads * hd + kvh * hd, t * kvHeads * hd + (kvh + 1) * hd), t, hd, cfg.theta));
        for (let i = 0; i < seq; i++) {
          const scores: number[] = [];
          for (let j = 0; j < seq; j++) {
            const visible = j <= i && mask[b][j] !== 0 && (cfg.window === undefined || i - j < cfg.window);
            let s = -Infinity;
            if (visible) {
              s = 0;
              for (let c = 0; c < hd; c++) s += qs[i][c] * ks[j][c];
              s /= Math.sqrt(hd);
            }
            scores.push(s);
          }
          const max = Math.max(...scores);
          const e = scores.map((s) => (s === -Infinity ? 0 : Math.exp(s - max)));
          const z = e.reduce((a, c) => a + c, 0);
          for (let c = 0; c < hd; c++) {
            let acc = 0;
            for (let j = 0; j < seq; j++) acc += (e[j] / z) * v[j * kvHeads * hd + kvh * hd + c];
            attn[i * d + head * hd + c] = acc;
          }
        }
      }
      const o = lin(attn, 'self_attn.o_proj', d, d, false);
      h = h.map((val, i) => val + o[i]);
      const y = rmsNormRef(h, seq, d, get(w, `${p}.post_attention_layernorm.weight`), cfg.eps);
      const gate = lin(y, 'mlp.gate_proj', d, cfg.intermediate, false);
      const up = lin(y, 'mlp.up_proj', d, cfg.intermediate, false);
      const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
      const down = lin(act, 'mlp.down_proj', cfg.intermediate, d, false);
      h = h.map((val, i) => val + down[i]);
    }
    const hn = rmsNormRef(h, seq, d, get(w, 'model.norm.weight'), cfg.eps);
    const head = cfg.tie ? get(w, 'model.embed_tokens.weight') : get(w, 'lm_head.weight');
    const out = linearRef(hn, seq, d, vocab, head, undefined, lora, 'lm_head', rowOffset);
    logits.set(out, b * seq * vocab);
    for (let t = 0; t + 1 < seq; t++) {
      const label = labels[b][t + 1];
      if (label === -100 || mask[b][t + 1] === 0) continue;
      const row = out.subarray(t * vocab, (t + 1) * vocab);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, c) => a + Math.exp(c - max), 0));
      lossSum += lse - row[label];
      count++;
    }
  }
  return { logits, loss: lossSum / Math.max(count, 1) };
}
