// Independent float64 references and seeded fixtures shared by the core tests. Nothing here reuses
// the code under test: the layout is handled with an explicit transpose of the dense B·A.
import type { UpdateTerm } from '../../src/core/lowRank.js';
import type { Matrix } from '../../src/core/tensor.js';
import type { Layout, LoraFactors, LoraModuleSpec } from '../../src/core/lora.js';
import { randomMatrix } from '../../src/core/random.js';
import type { Rng } from '../../src/core/random.js';
import type { AggregationRule } from '../../src/core/robust.js';
import type { DenseChange, ModuleBaseChange } from '../../src/core/baseChange.js';
import type { FactoredUpdate } from '../../src/core/residual.js';
import { maxAbs } from '../helpers/norms.js';

export { frobenius, frobeniusDiff, maxAbs, maxAbsDiff } from '../helpers/norms.js';

/** A module spec with defaults for tests. */
export function spec(name: string, out: number, inF: number, rank: number, layout: Layout, alpha = 16, useRslora = false): LoraModuleSpec {
  return { name, inFeatures: inF, outFeatures: out, rank, alpha, useRslora, layout };
}

/** k clients with non-zero, client-specific A and B (as after local training). */
export function randomClients(s: LoraModuleSpec, k: number, rng: Rng): LoraFactors[] {
  return Array.from({ length: k }, () => ({
    a: randomMatrix(s.rank, s.inFeatures, rng, 0.3),
    b: randomMatrix(s.outFeatures, s.rank, rng, 0.2),
  }));
}

/** The base weight in its stored layout. */
export function randomBase(s: LoraModuleSpec, rng: Rng): Matrix<Float32Array> {
  return s.layout === 'linear' ? randomMatrix(s.outFeatures, s.inFeatures, rng, 1) : randomMatrix(s.inFeatures, s.outFeatures, rng, 1);
}

/** Plain float64 a·b (i-j-t loop order, unlike the code under test). */
export function refMatmul(a: Matrix, b: Matrix): Float64Array {
  const [m, k] = a.shape;
  const n = b.shape[1];
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a.data[i * k + t] * b.data[t * n + j];
      out[i * n + j] = s;
    }
  }
  return out;
}

/** Explicit transpose of a rows × cols float64 buffer. */
export function refTranspose(data: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return out;
}

/** B·A (out × in) laid out like W0: itself for linear, its transpose (in × out) for conv1d. */
export function refDelta(f: LoraFactors, layout: Layout): Float64Array {
  const ba = refMatmul(f.b, f.a);
  return layout === 'linear' ? ba : refTranspose(ba, f.b.shape[0], f.a.shape[1]);
}

/** Σ w_i (W0 + s·B_i A_i) in float64, stored layout. */
export function refIdealWeight(w0: Matrix, clients: readonly LoraFactors[], weights: ArrayLike<number>, scale: number, layout: Layout): Float64Array {
  const out = new Float64Array(w0.data.length);
  clients.forEach((c, i) => {
    const d = refDelta(c, layout);
    for (let x = 0; x < out.length; x++) out[x] += weights[i] * (w0.data[x] + scale * d[x]);
  });
  return out;
}

/** W0' + s·B̄Ā in float64 from the stored float32 values. */
export function refEffectiveWeight(w0New: Matrix, global: LoraFactors, scale: number, layout: Layout): Float64Array {
  const d = refDelta(global, layout);
  return Float64Array.from(w0New.data, (v, x) => v + scale * d[x]);
}

/** Numerical rank by Gaussian elimination with full pivoting; pivots ≤ tol·max|m| count as zero. */
export function numericalRank(data: Float64Array, rows: number, cols: number, tol = 1e-9): number {
  const m = Float64Array.from(data);
  const threshold = tol * Math.max(maxAbs(m), Number.MIN_VALUE);
  let rank = 0;
  const usedRow = new Uint8Array(rows);
  const usedCol = new Uint8Array(cols);
  for (let step = 0; step < Math.min(rows, cols); step++) {
    let best = 0;
    let pr = -1;
    let pc = -1;
    for (let i = 0; i < rows; i++) {
      if (usedRow[i]) continue;
      for (let j = 0; j < cols; j++) {
        if (usedCol[j]) continue;
        const v = Math.abs(m[i * cols + j]);
        if (v > best) {
          best = v;
          pr = i;
          pc = j;
        }
      }
    }
    if (best <= threshold) break;
    rank++;
    usedRow[pr] = 1;
    usedCol[pc] = 1;
    for (let i = 0; i < rows; i++) {
      if (usedRow[i]) continue;
      const f = m[i * cols + pc] / m[pr * cols + pc];
      if (f === 0) continue;
      for (let j = 0; j < cols; j++) m[i * cols + j] -= f * m[pr * cols + j];
    }
  }
  return rank;
}

/** A robust rule over plain numbers, written out independently of src/core/robust.ts (sort with a comparator, explicit slice). */
export function refRule(values: readonly number[], rule: AggregationRule): number {
  const v = [...values].sort((a, b) => a - b);
  const k = v.length;
  if (rule.name === 'median') return k % 2 === 1 ? v[(k - 1) / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
  const t = rule.name === 'trimmed-mean' ? Math.floor(rule.trim * k + 1e-9) : 0;
  const kept = v.slice(t, k - t);
  return kept.reduce((a, b) => a + b, 0) / kept.length;
}

/** A strategy's base update, asserted factored (FedEx under the mean). */
export function factored(change: ModuleBaseChange | null): FactoredUpdate {
  if (change === null || change.form !== 'factored') throw new Error(`expected a factored base update, got ${change === null ? 'none' : change.form}`);
  return change;
}

/** A strategy's base update, asserted dense (FedEx under a robust rule, or finished from summed uploads). */
export function dense(change: ModuleBaseChange | null): DenseChange & { readonly layout: Layout } {
  if (change === null || change.form !== 'dense') throw new Error(`expected a dense base update, got ${change === null ? 'none' : change.form}`);
  return change;
}

/** Singular values of a dense row-major matrix by one-sided Jacobi (Hestenes), float64: the independent reference. */
export function jacobiSingularValues(data: Float64Array, rows: number, cols: number): Float64Array {
  // Orthogonalise the columns of M (rows × cols, rows ≥ cols after a transpose if needed).
  const tall = rows >= cols;
  const n = tall ? rows : cols;
  const k = tall ? cols : rows;
  const col = Array.from({ length: k }, (_, j) => Float64Array.from({ length: n }, (_, i) => (tall ? data[i * cols + j] : data[j * cols + i])));
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < k - 1; p++) {
      for (let q = p + 1; q < k; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < n; i++) {
          alpha += col[p][i] * col[p][i];
          beta += col[q][i] * col[q][i];
          gamma += col[p][i] * col[q][i];
        }
        if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
        off = Math.max(off, Math.abs(gamma) / Math.sqrt(alpha * beta));
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < n; i++) {
          const x = col[p][i];
          const y = col[q][i];
          col[p][i] = c * x - s * y;
          col[q][i] = s * x + c * y;
        }
      }
    }
    if (off <= 1e-15) break;
  }
  return Float64Array.from(col.map((c) => Math.hypot(...c))).sort((a, b) => b - a);
}

/** Σ terms (s·P·Q or s·D) as a dense out × in matrix, float64: the reference the re-factorizations are checked against. */
export function dense64(terms: readonly UpdateTerm[], out: number, inF: number): Float64Array {
  const acc = new Float64Array(out * inF);
  for (const t of terms) {
    const part = t.kind === 'factored' ? refMatmul(t.p, t.q) : Float64Array.from(t.d.data);
    for (let i = 0; i < acc.length; i++) acc[i] += t.scale * part[i];
  }
  return acc;
}
