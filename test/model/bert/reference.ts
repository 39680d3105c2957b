// Independent float64 reference of HF's BertForSequenceClassification and
// RobertaForSequenceClassification (evaluation mode), with plain loops from the HF modelling code;
// nothing here uses src/graph or src/model. The LoRA linear is the Llama reference's.
import { linearRef, type RefLora, type Weights } from '../llama/reference.js';

export interface RefBertConfig {
  readonly prefix: 'bert' | 'roberta';
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly intermediate: number;
  readonly eps: number;
  readonly numLabels: number;
  /** RoBERTa's padding_idx. */
  readonly pad: number;
  readonly gelu: 'erf' | 'tanh';
}

function get(w: Weights, key: string): Float64Array {
  const v = w.get(key);
  if (v === undefined) throw new Error(`reference: no weight ${key}`);
  return v;
}

/** erf to ~1e-15: Taylor series below 3, Laplace's continued fraction for erfc above. */
export function erfRef(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let frac = ax;
  for (let k = 80; k >= 1; k--) frac = ax + k / 2 / frac;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / frac;
  return Math.sign(x) * (1 - erfc);
}

function gelu(x: number, kind: 'erf' | 'tanh'): number {
  if (kind === 'erf') return 0.5 * x * (1 + erfRef(x / Math.SQRT2));
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

function layerNormRef(x: Float64Array, n: number, d: number, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let k = 0; k < d; k++) mean += x[i * d + k] / d;
    let v = 0;
    for (let k = 0; k < d; k++) v += (x[i * d + k] - mean) ** 2 / d;
    for (let k = 0; k < d; k++) y[i * d + k] = ((x[i * d + k] - mean) / Math.sqrt(v + eps)) * w[k] + b[k];
  }
  return y;
}

/** RoBERTa: positions count real tokens from padding_idx + 1; padding keeps padding_idx. BERT: 0, 1, 2, … */
export function positionIds(prefix: 'bert' | 'roberta', ids: readonly number[], pad: number): number[] {
  if (prefix === 'bert') return ids.map((_, t) => t);
  let count = 0;
  return ids.map((id) => (id === pad ? pad : pad + ++count));
}

/** Logits `[batch, numLabels]` and the mean cross-entropy over labels ≠ −100. */
export function bertReference(cfg: RefBertConfig, w: Weights, lora: RefLora | undefined, ids: number[][], mask: number[][], labels: number[], positions?: (ids: readonly number[]) => number[]): { logits: Float64Array; loss: number } {
  const { hidden: d, heads, prefix } = cfg;
  const hd = d / heads;
  const seq = ids[0].length;
  const logits = new Float64Array(ids.length * cfg.numLabels);
  let lossSum = 0;
  let count = 0;
  ids.forEach((row, b) => {
    const rowOffset = b * seq;
    const pos = positions === undefined ? positionIds(prefix, row, cfg.pad) : positions(row);
    const word = get(w, `${prefix}.embeddings.word_embeddings.weight`);
    const posTable = get(w, `${prefix}.embeddings.position_embeddings.weight`);
    const type0 = get(w, `${prefix}.embeddings.token_type_embeddings.weight`);
    let h: Float64Array = new Float64Array(seq * d);
    for (let t = 0; t < seq; t++) for (let k = 0; k < d; k++) h[t * d + k] = word[row[t] * d + k] + posTable[pos[t] * d + k] + type0[k];
    h = layerNormRef(h, seq, d, get(w, `${prefix}.embeddings.LayerNorm.weight`), get(w, `${prefix}.embeddings.LayerNorm.bias`), cfg.eps);
    for (let l = 0; l < cfg.layers; l++) {
      const p = `${prefix}.encoder.layer.${l}`;
      const lin = (x: Float64Array, name: string, inF: number, outF: number): Float64Array => linearRef(x, seq, inF, outF, get(w, `${p}.${name}.weight`), get(w, `${p}.${name}.bias`), lora, `${p}.${name}`, rowOffset);
      const q = lin(h, 'attention.self.query', d, d);
      const k = lin(h, 'attention.self.key', d, d);
      const v = lin(h, 'attention.self.value', d, d);
      const ctx = new Float64Array(seq * d);
      for (let head = 0; head < heads; head++) {
        for (let i = 0; i < seq; i++) {
          const scores = Array.from({ length: seq }, (_, j) => {
            if (mask[b][j] === 0) return -Infinity;
            let s = 0;
            for (let c = 0; c < hd; c++) s += q[i * d + head * hd + c] * k[j * d + head * hd + c];
            return s / Math.sqrt(hd);
          });
          const max = Math.max(...scores);
          const e = scores.map((s) => (s === -Infinity ? 0 : Math.exp(s - max)));
          const z = e.reduce((a, c) => a + c, 0);
          for (let c = 0; c < hd; c++) {
            let acc = 0;
            for (let j = 0; j < seq; j++) acc += (e[j] / z) * v[j * d + head * hd + c];
            ctx[i * d + head * hd + c] = acc;
          }
        }
      }
      const attnOut = lin(ctx, 'attention.output.dense', d, d);
      const h1 = layerNormRef(attnOut.map((x, i) => x + h[i]), seq, d, get(w, `${p}.attention.output.LayerNorm.weight`), get(w, `${p}.attention.output.LayerNorm.bias`), cfg.eps);
      const inner = lin(h1, 'intermediate.dense', d, cfg.intermediate).map((x) => gelu(x, cfg.gelu));
      const out = lin(inner, 'output.dense', cfg.intermediate, d);
      h = layerNormRef(out.map((x, i) => x + h1[i]), seq, d, get(w, `${p}.output.LayerNorm.weight`), get(w, `${p}.output.LayerNorm.bias`), cfg.eps);
    }
    const first = h.slice(0, d);
    // The head sees one row per example: row b of the dropout mask.
    const dense = (x: Float64Array, path: string, outF: number): Float64Array => linearRef(x, 1, d, outF, get(w, `${path}.weight`), get(w, `${path}.bias`), lora, path, b);
    const out = prefix === 'bert'
      ? dense(dense(first, 'bert.pooler.dense', d).map(Math.tanh), 'classifier', cfg.numLabels)
      : dense(dense(first, 'classifier.dense', d).map(Math.tanh), 'classifier.out_proj', cfg.numLabels);
    logits.set(out, b * cfg.numLabels);
    if (labels[b] !== -100) {
      const max = Math.max(...out);
      lossSum += max + Math.log(out.reduce((a, c) => a + Math.exp(c - max), 0)) - out[labels[b]];
      count++;
    }
  });
  return { logits, loss: lossSum / Math.max(count, 1) };
}
