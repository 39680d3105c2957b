// The float64 reference's operations, each with its hand-written backward (plain loops over
// row-major arrays, nothing from src/graph): linear with a LoRA branch, RMSNorm over rows, RoPE
// (partial, scaled), grouped-query causal attention (any score scale, optional soft cap), SwiGLU,
// residual add, column slices and the next-token cross-entropy. A Tape records the backward steps
// of one forward pass and replays them in reverse, accumulating into each Node's grad and into the
// LoRA factors' gradients.
import { addRowsTimesW, matVecRows, type WeightData } from './kernels.js';

export type { WeightData } from './kernels.js';

/** An activation `[rows, cols]` and its gradient (allocated on first use). */
export interface Node {
  readonly value: Float64Array;
  readonly rows: number;
  readonly cols: number;
  grad?: Float64Array;
}

function gradOf(n: Node): Float64Array {
  n.grad ??= new Float64Array(n.value.length);
  return n.grad;
}

/** LoRA factors of one module (A `[r, in]`, B `[out, r]`), their gradients, scaling and optional dropout keep mask `[rows, in]`. */
export interface LoraBranch {
  readonly a: WeightData;
  readonly b: WeightData;
  readonly r: number;
  readonly scaling: number;
  readonly keep?: { readonly mask: Uint8Array; readonly rate: number; readonly rowOffset: number };
  readonly grad?: { readonly a: Float64Array; readonly b: Float64Array };
}

/** Records backward steps; `backward()` runs them last to first. */
export class Tape {
  private readonly steps: (() => void)[] = [];

  node(value: Float64Array, rows: number, cols: number, back?: (self: Node) => void): Node {
    const n: Node = { value, rows, cols };
    if (back !== undefined)
      this.steps.push(() => {
        if (n.grad !== undefined) back(n);
      });
    return n;
  }

  backward(): void {
    for (let i = this.steps.length - 1; i >= 0; i--) this.steps[i]();
  }

  /** `x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ`, W `[out, in]`. */
  linear(x: Node, w: WeightData, outF: number, bias?: WeightData, lora?: LoraBranch): Node {
    const n = x.rows;
    const inF = x.cols;
    const xv = x.value;
    const y = matVecRows(xv, n, inF, w, outF);
    if (bias !== undefined) { for (let i = 0; i < n; i++) for (let o = 0; o < outF; o++) y[i * outF + o] += bias[o]; }
    let xd: Float64Array | undefined;
    let low: Float64Array | undefined;
    if (lora !== undefined) {
      const { a, b, r, scaling, keep } = lora;
      xd = keep === undefined ? xv : xv.map((val, idx) => {
        const i = Math.floor(idx / inF);
        return val * keep.mask[(keep.rowOffset + i) * inF + (idx % inF)] / (1 - keep.rate);
      });
      low = new Float64Array(n * r);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < r; j++) {
          let acc = 0;
          for (let k = 0; k < inF; k++) acc += xd[i * inF + k] * a[j * inF + k];
          low[i * r + j] = acc;
        }
      for (let i = 0; i < n; i++)
        for (let o = 0; o < outF; o++) {
          let acc = 0;
          for (let j = 0; j < r; j++) acc += b[o * r + j] * low[i * r + j];
          y[i * outF + o] += scaling * acc;
        }
    }
    return this.node(y, n, outF, (self) => {
      const dy = self.grad!;
      const dx = gradOf(x);
      addRowsTimesW(dy, n, outF, w, inF, dx);
      if (lora === undefined) return;
      const { a, b, r, scaling, keep, grad } = lora;
      // u = s·dy·B [n, r]: the gradient at the low-rank activation.
      const u = new Float64Array(n * r);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < r; j++) {
          let acc = 0;
          for (let o = 0; o < outF; o++) acc += dy[i * outF + o] * b[o * r + j];
          u[i * r + j] = scaling * acc;
        }
      for (let i = 0; i < n; i++)
        for (let k = 0; k < inF; k++) {
          let acc = 0;
          for (let j = 0; j < r; j++) acc += u[i * r + j] * a[j * inF + k];
          dx[i * inF + k] += keep === undefined ? acc : acc * keep.mask[(keep.rowOffset + i) * inF + k] / (1 - keep.rate);
        }
      if (grad === undefined) return;
      for (let j = 0; j < r; j++)
        for (let k = 0; k < inF; k++) {
          let acc = 0;
          for (let i = 0; i < n; i++) acc += u[i * r + j] * xd![i * inF + k];
          grad.a[j * inF + k] += acc;
        }
      for (let o = 0; o < outF; o++)
        for (let j = 0; j < r; j++) {
          let acc = 0;
          for (let i = 0; i < n; i++) acc += dy[i * outF + o] * low![i * r + j];
          grad.b[o * r + j] += scaling * acc;
        }
    });
  }

  /** RMSNorm over consecutive groups of `w.length` values (rows, or heads within rows): `w·x/√(mean(x²) + ε)`. */
  rmsNorm(x: Node, w: WeightData, eps: number): Node {
    const width = w.length;
    const groups = x.value.length / width;
    const inv = new Float64Array(groups);
    const y = new Float64Array(x.value.length);
    for (let gi = 0; gi < groups; gi++) {
      let ms = 0;
      for (let k = 0; k < width; k++) ms += x.value[gi * width + k] ** 2;
      inv[gi] = 1 / Math.sqrt(ms / width + eps);
      for (let k = 0; k < width; k++) y[gi * width + k] = w[k] * x.value[gi * width + k] * inv[gi];
    }
    return this.node(y, x.rows, x.cols, (self) => {
      const dy = self.grad!;
      const dx = gradOf(x);
      for (let gi = 0; gi < groups; gi++) {
        let dot = 0;
        for (let k = 0; k < width; k++) dot += w[k] * dy[gi * width + k] * x.value[gi * width + k];
        const c = inv[gi] ** 3 * dot / width;
        for (let k = 0; k < width; k++) dx[gi * width + k] += inv[gi] * w[k] * dy[gi * width + k] - x.value[gi * width + k] * c;
      }
    });
  }

  /**
   * HF's apply_rotary_pos_emb on every head of x `[T, heads·hd]` at positions 0…T−1: the first
   * `2·invFreq.length` dims of a head rotate (`x·cos + rotate_half(x)·sin`, both times `scale`),
   * the rest pass through.
   */
  rope(x: Node, hd: number, invFreq: readonly number[], scale: number): Node {
    const half = invFreq.length;
    const heads = x.cols / hd;
    const cs = (t: number, i: number): [number, number] => [scale * Math.cos(t * invFreq[i % half]), scale * Math.sin(t * invFreq[i % half])];
    const y = new Float64Array(x.value.length);
    for (let t = 0; t < x.rows; t++)
      for (let hh = 0; hh < heads; hh++) {
        const o = t * x.cols + hh * hd;
        for (let i = 0; i < hd; i++) {
          if (i >= 2 * half) {
            y[o + i] = x.value[o + i];
            continue;
          }
          const [c, s] = cs(t, i);
          const rotated = i < half ? -x.value[o + i + half] : x.value[o + i - half];
          y[o + i] = x.value[o + i] * c + rotated * s;
        }
      }
    return this.node(y, x.rows, x.cols, (self) => {
      const dy = self.grad!;
      const dx = gradOf(x);
      for (let t = 0; t < x.rows; t++)
        for (let hh = 0; hh < heads; hh++) {
          const o = t * x.cols + hh * hd;
          for (let i = 0; i < hd; i++) {
            if (i >= 2 * half) {
              dx[o + i] += dy[o + i];
              continue;
            }
            const [c, s] = cs(t, i);
            dx[o + i] += dy[o + i] * c;
            if (i < half) dx[o + i + half] -= dy[o + i] * s;
            else dx[o + i - half] += dy[o + i] * s;
          }
        }
    });
  }

  /**
   * Causal softmax attention per query head; query head h reads key/value head
   * `floor(h / (heads / kvHeads))` (HF repeat_kv); `visible(i, j)` hides keys. Scores are
   * `scale·q·k` (default 1/√hd), soft-capped to `cap·tanh(score/cap)` when `softcap` is given (Gemma 2).
   */
  attention(q: Node, k: Node, v: Node, hd: number, visible: (i: number, j: number) => boolean, options: { scale?: number; softcap?: number } = {}): Node {
    const T = q.rows;
    const heads = q.cols / hd;
    const kvHeads = k.cols / hd;
    const group = heads / kvHeads;
    const probs: Float64Array[] = [];
    /** d capped score / d score per head, `1 − tanh²(score/cap)`. */
    const capSlopes: Float64Array[] = [];
    const out = new Float64Array(T * q.cols);
    const scale = options.scale ?? 1 / Math.sqrt(hd);
    const cap = options.softcap;
    for (let hh = 0; hh < heads; hh++) {
      const kv = Math.floor(hh / group);
      const p = new Float64Array(T * T);
      const slope = new Float64Array(T * T).fill(1);
      for (let i = 0; i < T; i++) {
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          if (!visible(i, j)) continue;
          let s = 0;
          for (let c = 0; c < hd; c++) s += q.value[i * q.cols + hh * hd + c] * k.value[j * k.cols + kv * hd + c];
          s *= scale;
          if (cap !== undefined) {
            const t = Math.tanh(s / cap);
            slope[i * T + j] = 1 - t * t;
            s = cap * t;
          }
          p[i * T + j] = s;
          max = Math.max(max, s);
        }
        let z = 0;
        for (let j = 0; j < T; j++) {
          p[i * T + j] = visible(i, j) ? Math.exp(p[i * T + j] - max) : 0;
          z += p[i * T + j];
        }
        for (let j = 0; j < T; j++) {
          p[i * T + j] /= z;
          for (let c = 0; c < hd; c++) out[i * q.cols + hh * hd + c] += p[i * T + j] * v.value[j * v.cols + kv * hd + c];
        }
      }
      probs.push(p);
      capSlopes.push(slope);
    }
    return this.node(out, T, q.cols, (self) => {
      const dout = self.grad!;
      const dq = gradOf(q);
      const dk = gradOf(k);
      const dv = gradOf(v);
      for (let hh = 0; hh < heads; hh++) {
        const kv = Math.floor(hh / group);
        const p = probs[hh];
        for (let i = 0; i < T; i++) {
          const dp = new Float64Array(T);
          let sum = 0;
          for (let j = 0; j < T; j++) {
            for (let c = 0; c < hd; c++) {
              dp[j] += dout[i * q.cols + hh * hd + c] * v.value[j * v.cols + kv * hd + c];
              dv[j * v.cols + kv * hd + c] += p[i * T + j] * dout[i * q.cols + hh * hd + c];
            }
            sum += p[i * T + j] * dp[j];
          }
          for (let j = 0; j < T; j++) {
            const ds = p[i * T + j] * (dp[j] - sum) * capSlopes[hh][i * T + j] * scale;
            if (ds === 0) continue;
            for (let c = 0; c < hd; c++) {
              dq[i * q.cols + hh * hd + c] += ds * k.value[j * k.cols + kv * hd + c];
              dk[j * k.cols + kv * hd + c] += ds * q.value[i * q.cols + hh * hd + c];
            }
          }
        }
      }
    });
  }

  add(a: Node, b: Node): Node {
    return this.node(a.value.map((x, i) => x + b.value[i]), a.rows, a.cols, (self) => {
      const da = gradOf(a);
      const db = gradOf(b);
      self.grad!.forEach((g, i) => {
        da[i] += g;
        db[i] += g;
      });
    });
  }

  /** `silu(gate)·up`. */
  swiglu(gate: Node, up: Node): Node {
    const sig = gate.value.map((g) => 1 / (1 + Math.exp(-g)));
    return this.node(gate.value.map((g, i) => g * sig[i] * up.value[i]), gate.rows, gate.cols, (self) => {
      const dg = gradOf(gate);
      const du = gradOf(up);
      self.grad!.forEach((d, i) => {
        const g = gate.value[i];
        du[i] += d * g * sig[i];
        dg[i] += d * up.value[i] * sig[i] * (1 + g * (1 - sig[i]));
      });
    });
  }

  /** Columns `[start, start + width)` of x. */
  columns(x: Node, start: number, width: number): Node {
    const y = new Float64Array(x.rows * width);
    for (let i = 0; i < x.rows; i++) for (let c = 0; c < width; c++) y[i * width + c] = x.value[i * x.cols + start + c];
    return this.node(y, x.rows, width, (self) => {
      const dx = gradOf(x);
      for (let i = 0; i < x.rows; i++) for (let c = 0; c < width; c++) dx[i * x.cols + start + c] += self.grad![i * width + c];
    });
  }

  /**
   * Σ over rows t with `targets[t] ≥ 0` of `logsumexp(logits[t]) − logits[t, targets[t]]`, divided
   * by `denominator`; seeds the gradient of `logits` (call {@link backward} after).
   */
  crossEntropy(logits: Node, targets: readonly number[], denominator: number): number {
    const V = logits.cols;
    const dl = gradOf(logits);
    let sum = 0;
    targets.forEach((label, t) => {
      if (label < 0) return;
      const row = logits.value.subarray(t * V, (t + 1) * V);
      let max = -Infinity;
      for (const x of row) max = Math.max(max, x);
      let z = 0;
      for (const x of row) z += Math.exp(x - max);
      sum += max + Math.log(z) - row[label];
      for (let c = 0; c < V; c++) dl[t * V + c] += Math.exp(row[c] - max) / z / denominator;
      dl[t * V + label] -= 1 / denominator;
    });
    return sum / denominator;
  }
}
