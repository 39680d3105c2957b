// A tiny GPT-2 for tests: seeded random weights under HF hub key names, an independent float64
// reference forward pass written with plain loops (nothing from src/graph), and feeds for the
// built graph. Shapes are non-square on purpose (c_attn 16×48, c_fc 16×24, r = 3) so a wrong
// Conv1D transpose cannot hide.
import { createRng } from '../../../src/core/random.js';
import type { ModelGraph, LoraSettings } from '../../../src/model/types.js';
import { type OrtTensor, ortTensor } from '../../../src/runtime/session.js';

export interface TinyConfig {
  readonly vocab: number;
  readonly d: number;
  readonly layers: number;
  readonly heads: number;
  readonly inner: number;
  readonly positions: number;
  readonly eps: number;
}

export const TINY: TinyConfig = { vocab: 40, d: 16, layers: 2, heads: 2, inner: 24, positions: 8, eps: 1e-5 };

/** config.json for a tiny config (dropouts off unless given). */
export function tinyConfigJson(c: TinyConfig = TINY, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    vocab_size: c.vocab,
    n_embd: c.d,
    n_layer: c.layers,
    n_head: c.heads,
    n_inner: c.inner,
    n_positions: c.positions,
    layer_norm_epsilon: c.eps,
    activation_function: 'gelu_new',
    embd_pdrop: 0,
    attn_pdrop: 0,
    resid_pdrop: 0,
    ...extra,
  };
}

/** Stored key → shape, as HF's GPT-2 checkpoints name them (no `transformer.` prefix). */
export function tinyShapes(c: TinyConfig = TINY): Map<string, number[]> {
  const { d, inner } = c;
  const m = new Map<string, number[]>([['wte.weight', [c.vocab, d]], ['wpe.weight', [c.positions, d]]]);
  for (let l = 0; l < c.layers; l++) {
    const p = `h.${l}`;
    m.set(`${p}.ln_1.weight`, [d]).set(`${p}.ln_1.bias`, [d]);
    m.set(`${p}.attn.c_attn.weight`, [d, 3 * d]).set(`${p}.attn.c_attn.bias`, [3 * d]);
    m.set(`${p}.attn.c_proj.weight`, [d, d]).set(`${p}.attn.c_proj.bias`, [d]);
    m.set(`${p}.ln_2.weight`, [d]).set(`${p}.ln_2.bias`, [d]);
    m.set(`${p}.mlp.c_fc.weight`, [d, inner]).set(`${p}.mlp.c_fc.bias`, [inner]);
    m.set(`${p}.mlp.c_proj.weight`, [inner, d]).set(`${p}.mlp.c_proj.bias`, [d]);
  }
  m.set('ln_f.weight', [d]).set('ln_f.bias', [d]);
  return m;
}

/** Seeded weights (float64): norms near 1, everything else N(0, 0.3²) so every path matters. */
export function tinyWeights(seed: number, c: TinyConfig = TINY): Map<string, Float64Array> {
  const rng = createRng(seed);
  const out = new Map<string, Float64Array>();
  for (const [key, shape] of tinyShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNormScale = /ln_\d\.weight$|ln_f\.weight$/.test(key);
    out.set(key, Float64Array.from({ length: n }, () => (isNormScale ? 1 : 0) + 0.3 * rng.gaussian()));
  }
  return out;
}

export function loraSettings(fields: Partial<LoraSettings> = {}): LoraSettings {
  return { r: 3, alpha: 5, useRslora: false, dropout: 0, targetModules: ['c_attn', 'c_proj', 'c_fc'], freezeA: false, modulesToSave: [], ...fields };
}

/** Random non-zero LoRA factors for every module of a built graph, by input name. */
export function randomLora(model: ModelGraph, seed: number, std = 0.3): Map<string, Float64Array> {
  const rng = createRng(seed);
  const out = new Map<string, Float64Array>();
  for (const v of model.graph.inputs) {
    if (!/\.lora_[AB]$/.test(v.name)) continue;
    const n = (v.shape as number[]).reduce((a, b) => a * b, 1);
    out.set(v.name, Float64Array.from({ length: n }, () => std * rng.gaussian()));
  }
  return out;
}

export interface Batch {
  readonly batch: number;
  readonly seq: number;
  readonly ids: number[];
  readonly mask: number[];
}

/** Ids and a right-padded mask: row b has `lengths[b]` tokens. */
export function paddedBatch(lengths: readonly number[], seq: number, seed: number, vocab = TINY.vocab): Batch {
  const rng = createRng(seed);
  const ids: number[] = [];
  const mask: number[] = [];
  for (const len of lengths) {
    for (let t = 0; t < seq; t++) {
      ids.push(t < len ? rng.int(vocab) : 0);
      mask.push(t < len ? 1 : 0);
    }
  }
  return { batch: lengths.length, seq, ids, mask };
}

// ---------------------------------------------------------------------------------------------
// Reference forward pass (float64, plain loops, HF GPT-2 semantics).

export interface RefLora {
  /** A [r, in], B [out, r], by module path `transformer.h.N.attn.c_attn`; a module's own scaling (rank_pattern, alpha_pattern) when given. */
  readonly factors: ReadonlyMap<string, { a: Float64Array; b: Float64Array; r: number; scaling?: number }>;
  readonly scaling: number;
  /** Optional dropout keep-mask (scaled) applied to the adapter input, by module path: [rows·in]. */
  readonly inputScale?: ReadonlyMap<string, Float64Array>;
}

type Rows = Float64Array[];

function layerNorm(x: Rows, w: Float64Array, b: Float64Array, eps: number): Rows {
  return x.map((row) => {
    const n = row.length;
    let mean = 0;
    for (const v of row) mean += v;
    mean /= n;
    let variance = 0;
    for (const v of row) variance += (v - mean) ** 2;
    variance /= n;
    const inv = 1 / Math.sqrt(variance + eps);
    return row.map((v, i) => (v - mean) * inv * w[i] + b[i]);
  });
}

/** Conv1D: y = x·(W + s·(B·A)ᵀ) + bias with W stored [in, out]; the effective weight is formed explicitly. */
function conv1d(x: Rows, weights: Map<string, Float64Array>, key: string, path: string, inF: number, outF: number, lora: RefLora | undefined): Rows {
  const w = weights.get(`${key}.weight`)!;
  const bias = weights.get(`${key}.bias`)!;
  const f = lora?.factors.get(path);
  const y = x.map((row) => {
    const out = new Float64Array(outF);
    for (let o = 0; o < outF; o++) {
      let acc = bias[o];
      for (let i = 0; i < inF; i++) acc += row[i] * w[i * outF + o];
      out[o] = acc;
    }
    return out;
  });
  if (f === undefined) return y;
  const scale = lora!.inputScale?.get(path);
  x.forEach((row, n) => {
    for (let o = 0; o < outF; o++) {
      let acc = 0;
      for (let i = 0; i < inF; i++) {
        let ba = 0;
        for (let k = 0; k < f.r; k++) ba += f.b[o * f.r + k] * f.a[k * inF + i];
        acc += row[i] * (scale === undefined ? 1 : scale[n * inF + i]) * ba;
      }
      y[n][o] += (f.scaling ?? lora!.scaling) * acc;
    }
  });
  return y;
}

function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** Final hidden states (after ln_f) `[batch·seq][d]` of HF's GPT2Model. */
export function refHidden(c: TinyConfig, weights: Map<string, Float64Array>, input: Batch, lora?: RefLora): Rows {
  const { d, heads } = c;
  const hd = d / heads;
  const { batch: B, seq: T } = input;
  const wte = weights.get('wte.weight')!;
  const wpe = weights.get('wpe.weight')!;
  let h: Rows = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const id = input.ids[b * T + t];
      h.push(Float64Array.from({ length: d }, (_, j) => wte[id * d + j] + wpe[t * d + j]));
    }
  }
  for (let l = 0; l < c.layers; l++) {
    const key = `h.${l}`;
    const path = `transformer.h.${l}`;
    const a = layerNorm(h, weights.get(`${key}.ln_1.weight`)!, weights.get(`${key}.ln_1.bias`)!, c.eps);
    const qkv = conv1d(a, weights, `${key}.attn.c_attn`, `${path}.attn.c_attn`, d, 3 * d, lora);
    const ctx: Rows = h.map(() => new Float64Array(d));
    for (let b = 0; b < B; b++) {
      for (let hh = 0; hh < heads; hh++) {
        for (let i = 0; i < T; i++) {
          const q = qkv[b * T + i];
          const scores: number[] = [];
          for (let j = 0; j <= i; j++) {
            if (input.mask[b * T + j] === 0) continue;
            const k = qkv[b * T + j];
            let s = 0;
            for (let e = 0; e < hd; e++) s += q[hh * hd + e] * k[d + hh * hd + e];
            scores.push(s / Math.sqrt(hd));
          }
          const keys = [...Array(i + 1).keys()].filter((j) => input.mask[b * T + j] !== 0);
          const max = Math.max(...scores);
          const ex = scores.map((s) => Math.exp(s - max));
          const z = ex.reduce((x, y) => x + y, 0);
          keys.forEach((j, n) => {
            const v = qkv[b * T + j];
            for (let e = 0; e < hd; e++) ctx[b * T + i][hh * hd + e] += (ex[n] / z) * v[2 * d + hh * hd + e];
          });
        }
      }
    }
    const attnOut = conv1d(ctx, weights, `${key}.attn.c_proj`, `${path}.attn.c_proj`, d, d, lora);
    h = h.map((row, n) => row.map((v, j) => v + attnOut[n][j]));
    const m = layerNorm(h, weights.get(`${key}.ln_2.weight`)!, weights.get(`${key}.ln_2.bias`)!, c.eps);
    const fc = conv1d(m, weights, `${key}.mlp.c_fc`, `${path}.mlp.c_fc`, d, c.inner, lora).map((row) => row.map(geluNew));
    const mlpOut = conv1d(fc, weights, `${key}.mlp.c_proj`, `${path}.mlp.c_proj`, c.inner, d, lora);
    h = h.map((row, n) => row.map((v, j) => v + mlpOut[n][j]));
  }
  return layerNorm(h, weights.get('ln_f.weight')!, weights.get('ln_f.bias')!, c.eps);
}

/** LM logits `[batch·seq·vocab]` (lm_head tied to wte). */
export function refLogits(c: TinyConfig, weights: Map<string, Float64Array>, hidden: Rows): Float64Array {
  const wte = weights.get('wte.weight')!;
  const out = new Float64Array(hidden.length * c.vocab);
  hidden.forEach((row, n) => {
    for (let v = 0; v < c.vocab; v++) {
      let acc = 0;
      for (let j = 0; j < c.d; j++) acc += row[j] * wte[v * c.d + j];
      out[n * c.vocab + v] = acc;
    }
  });
  return out;
}

/** −log softmax(row)[label]. */
export function nll(logits: ArrayLike<number>, offset: number, classes: number, label: number): number {
  let max = -Infinity;
  for (let v = 0; v < classes; v++) max = Math.max(max, logits[offset + v]);
  let z = 0;
  for (let v = 0; v < classes; v++) z += Math.exp(logits[offset + v] - max);
  return -(logits[offset + label] - max - Math.log(z));
}

/** HF causal-LM loss: logits[:, :-1] vs labels[:, 1:], −100 ignored, mean over counted tokens. */
export function refCausalLoss(logits: Float64Array, labels: readonly number[], batch: number, seq: number, vocab: number): number {
  let sum = 0;
  let count = 0;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t + 1 < seq; t++) {
      const label = labels[b * seq + t + 1];
      if (label === -100) continue;
      sum += nll(logits, (b * seq + t) * vocab, vocab, label);
      count++;
    }
  }
  return count === 0 ? 0 : sum / count;
}

// ---------------------------------------------------------------------------------------------
// Feeds for the graph.

/** Feeds for every input of a built graph: weights by HF name (from stored keys), LoRA and extras by input name. */
export function feedsFor(model: ModelGraph, dtype: 'float32' | 'float64', weights: Map<string, Float64Array>, input: Batch, labels: readonly number[], extra: ReadonlyMap<string, Float64Array> = new Map(),
  seed?: bigint): Record<string, OrtTensor> {
  const feeds: Record<string, OrtTensor> = {};
  const { batch: B, seq: T } = input;
  const float = (data: Float64Array, dims: readonly number[]): OrtTensor => (dtype === 'float64' ? ortTensor('float64', data, dims) : ortTensor('float32', Float32Array.from(data), dims));
  const keyOf = new Map<string, string>(model.frozen.map((f) => [f.input, f.key]));
  for (const f of model.fullTrainable ?? []) if (f.key !== undefined) keyOf.set(f.input, f.key);
  for (const v of model.graph.inputs) {
    const dims = v.shape as number[];
    if (v.name === 'input_ids') feeds[v.name] = ortTensor('int64', BigInt64Array.from(input.ids, BigInt), [B, T]);
    else if (v.name === 'attention_mask') feeds[v.name] = ortTensor('int64', BigInt64Array.from(input.mask, BigInt), [B, T]);
    else if (v.name === 'labels') feeds[v.name] = ortTensor('int64', BigInt64Array.from(labels, BigInt), labels.length === B ? [B] : [B, T]);
    else if (v.name === 'dropout_seed') feeds[v.name] = ortTensor('int64', BigInt64Array.of(seed ?? 0n), []);
    else if (extra.has(v.name)) feeds[v.name] = float(extra.get(v.name)!, dims);
    else if (keyOf.has(v.name)) feeds[v.name] = float(weights.get(keyOf.get(v.name)!)!, dims);
  }
  return feeds;
}

/** Relative-with-floor closeness: |a − e| ≤ rtol·max(1, |e|), reporting the worst index. */
export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): { err: number; at: number } {
  let err = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(Number(actual[i]) - expected[i]) / Math.max(1, Math.abs(expected[i]));
    if (!(e <= err)) {
      err = e;
      at = i;
    }
  }
  return { err, at };
}
