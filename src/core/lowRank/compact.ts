/**
 * Near-dependent columns inside one stacked term, taken out before the re-factorization
 * (core/lowRank.ts, docs/math.md §1.1).
 *
 * A FedEx residual in the stacked form, P = [w_1 B_1 | … | w_k B_k], Q = [A_1 − Ā; …; A_k − Ā], has
 * Σ w_i (A_i − Ā) = 0 up to the float32 rounding of Ā and of the differences: r combinations of Q's
 * k·r rows are (nearly) zero, so the round is carried by (k − 1)·r directions and the last r only
 * hold rounding. This finds such combinations in any factored term, without knowing where they come
 * from, and rewrites the term exactly. For a term P·Q (inner size w; X the side searched, Y the other):
 *
 *   N = the eigenvectors of XᵀX whose eigenvalues are ≤ NEAR_NULL²·λ_max (d of them: ‖X·N‖ ≤ NEAR_NULL·‖X‖₂);
 *   Gauss–Jordan with complete pivoting on Nᵀ picks d pivot columns J and gives M (d × (w − d)) with
 *   [I  M] = L·Nᵀ (columns J, then the others K), so that E = X_J + X_K·Mᵀ = X·N·Lᵀ is small;
 *   P·Q = Y_K·X_Kᵀ + Y_J·X_Jᵀ = (Y_K − Y_J·M)·X_Kᵀ + Y_J·Eᵀ   (for ANY M: the identity is exact).
 *
 * The term keeps w − d columns (Y_K − Y_J·M, X_K) and the part Y_J·Eᵀ is set aside, its factors
 * returned; the caller decides how to factor it (core/lowRank.ts). One side is searched: the one
 * that holds the terms' Q (Qᵀ's columns, or P's when the caller works on ΔWᵀ).
 */
import { symmetricEigen } from './eigen.js';
import type { Products } from './products.js';

/** Combinations with ‖X·n‖ ≤ NEAR_NULL·‖X‖₂ count as near-zero (FedEx's rounding ones sit at 1e-6–1e-8). */
export const NEAR_NULL = 2 ** -16;

/** Columns [start, start + width) of the stack belong to one term. */
export interface TermColumns {
  readonly start: number;
  readonly width: number;
  /** False for a dense term's (D, I) columns: kept whole, never searched. Default true. */
  readonly search?: boolean;
}

/**
 * The stack after {@link compactStack}: its first `m` columns are kept; the set-aside part is
 * `omittedP·omittedQtᵀ`, held in the stack's last d columns (no copy).
 */
export interface CompactedStack {
  readonly m: number;
  /** How many columns were set aside (the inner size of the omitted part). */
  readonly d: number;
  /** out × d, column-major: a view of P's columns [m, m + d). */
  readonly omittedP: Float64Array;
  /** in × d, column-major: a view of Qᵀ's columns [m, m + d). */
  readonly omittedQt: Float64Array;
  /** Σ over the terms of the set-aside part's ‖Y_J·Eᵀ‖_F: at least ‖omittedP·omittedQtᵀ‖_F. */
  readonly omittedNormBound: number;
}

/**
 * Compacts the stack in place: P (`p`, out × m) and Qᵀ (`qt`, in × m), both column-major, with the
 * column ranges of every term, in order and covering the stack. Each searched term loses the columns
 * of `side` that are near-dependent (module docs): its kept columns move to the front of the stack,
 * in order, and its set-aside factors (Y_J, E) to the back, so that the whole rewrite needs no more
 * memory than one column per side.
 */
export function* compactStack(p: Float64Array, qt: Float64Array, out: number, inF: number, terms: readonly TermColumns[], side: 'p' | 'q'): Products<CompactedStack> {
  const kept: number[] = [];
  const omitted: number[] = [];
  let bound = 0;
  const [x, lx, y, ly] = side === 'q' ? [qt, inF, p, out] : [p, out, qt, inF];
  for (const t of terms) {
    const found = t.width < 2 || t.search === false ? null : yield* nearNullColumns(x, lx, y, ly, t.start, t.width);
    const nk = t.width - (found?.d ?? 0);
    if (found !== null) bound += found.norm;
    for (let c = t.start; c < t.start + nk; c++) kept.push(c);
    for (let c = t.start + nk; c < t.start + t.width; c++) omitted.push(c);
  }
  const mk = kept.length;
  const order = [...kept, ...omitted];
  permuteColumns(p, out, 0, order);
  permuteColumns(qt, inF, 0, order);
  const d = omitted.length;
  return { m: mk, d, omittedP: p.subarray(mk * out, (mk + d) * out), omittedQt: qt.subarray(mk * inF, (mk + d) * inF), omittedNormBound: bound };
}

/**
 * One side of one term (module docs): columns [c0, c0 + w) of `x` (length lx each) and of `y`
 * (length ly). When near-null combinations exist, reorders the columns to K then J on both sides,
 * updates Y_K, overwrites X_J with E (lx × d), and returns d and ‖Y_J·Eᵀ‖_F; Y_J and E are then
 * the term's last d columns.
 */
function* nearNullColumns(x: Float64Array, lx: number, y: Float64Array, ly: number, c0: number, w: number): Products<{ d: number; norm: number } | null> {
  const xs = x.subarray(c0 * lx, (c0 + w) * lx);
  const gram = new Float64Array(w * w);
  yield { transA: false, transB: true, m: w, n: w, k: lx, a: xs, b: xs, out: gram };
  for (let a = 0; a < w; a++) for (let b = 0; b < a; b++) gram[a * w + b] = gram[b * w + a] = (gram[a * w + b] + gram[b * w + a]) / 2;
  const { values, vectors } = symmetricEigen(gram, w);
  const limit = NEAR_NULL * NEAR_NULL * values[0];
  if (!(values[0] > 0)) return null;
  let d = 0;
  while (d < w - 1 && values[w - 1 - d] <= limit) d++;
  if (d === 0) return null;
  const { pivots, others, m } = pivotedEchelon(vectors.subarray((w - d) * w, w * w), d, w);
  // Columns K first, then J (in pivot order): the block is rewritten in that order on both sides.
  const order = [...others, ...pivots];
  permuteColumns(x, lx, c0, order);
  permuteColumns(y, ly, c0, order);
  const nk = w - d;
  const xk = x.subarray(c0 * lx, (c0 + nk) * lx);
  const yk = y.subarray(c0 * ly, (c0 + nk) * ly);
  // E = X_J + X_K·Mᵀ (rows of Eᵀ = X_Jᵀ + M·X_Kᵀ), in place of X_J.
  const e = x.subarray((c0 + nk) * lx, (c0 + w) * lx);
  const yj = y.subarray((c0 + nk) * ly, (c0 + w) * ly);
  const minusM = Float64Array.from(m, (v) => -v);
  yield { transA: false, transB: false, m: d, n: lx, k: nk, a: minusM, b: xk, out: e, subtract: true };
  // Y_K ← Y_K − Y_J·M (rows: Y_Kᵀ −= Mᵀ·Y_Jᵀ).
  yield { transA: true, transB: false, m: nk, n: ly, k: d, a: m, b: yj, out: yk, subtract: true };
  // ‖Y_J·Eᵀ‖_F² = Σ (Y_JᵀY_J) ∘ (EᵀE).
  const gy = new Float64Array(d * d);
  const ge = new Float64Array(d * d);
  yield { transA: false, transB: true, m: d, n: d, k: ly, a: yj, b: yj, out: gy };
  yield { transA: false, transB: true, m: d, n: d, k: lx, a: e, b: e, out: ge };
  let norm2 = 0;
  for (let i = 0; i < d * d; i++) norm2 += gy[i] * ge[i];
  return { d, norm: Math.sqrt(Math.max(0, norm2)) };
}

/**
 * Gauss–Jordan elimination with complete pivoting of the d × w row-major `nt` (rows orthonormal):
 * the pivot columns J (in the order of the rows they end up in), the other columns K (ascending), and
 * M (d × (w − d), row-major) with L·nt = [I at J, M at K].
 */
export function pivotedEchelon(nt: Float64Array, d: number, w: number): { pivots: number[]; others: number[]; m: Float64Array } {
  const g = nt.slice();
  const isPivot = new Uint8Array(w);
  const pivots: number[] = [];
  for (let s = 0; s < d; s++) {
    let best = -1;
    let bi = s;
    let bj = 0;
    for (let i = s; i < d; i++) {
      for (let j = 0; j < w; j++) {
        if (isPivot[j] === 1) continue;
        const v = Math.abs(g[i * w + j]);
        if (v > best) {
          best = v;
          bi = i;
          bj = j;
        }
      }
    }
    if (bi !== s) {
      for (let j = 0; j < w; j++) {
        const t = g[s * w + j];
        g[s * w + j] = g[bi * w + j];
        g[bi * w + j] = t;
      }
    }
    isPivot[bj] = 1;
    pivots.push(bj);
    const inv = 1 / g[s * w + bj];
    for (let j = 0; j < w; j++) g[s * w + j] *= inv;
    g[s * w + bj] = 1;
    for (let i = 0; i < d; i++) {
      if (i === s) continue;
      const f = g[i * w + bj];
      if (f === 0) continue;
      for (let j = 0; j < w; j++) g[i * w + j] -= f * g[s * w + j];
      g[i * w + bj] = 0;
    }
  }
  const others: number[] = [];
  for (let j = 0; j < w; j++) if (isPivot[j] === 0) others.push(j);
  const m = new Float64Array(d * others.length);
  for (let s = 0; s < d; s++) others.forEach((j, c) => (m[s * others.length + c] = g[s * w + j]));
  return { pivots, others, m };
}

/**
 * Rewrites columns [c0, c0 + order.length) of the column-major `x` (columns of length `len`) in
 * `order` (new column c = old column order[c]), in place: each cycle of the permutation with one
 * column set aside.
 */
function permuteColumns(x: Float64Array, len: number, c0: number, order: readonly number[]): void {
  const done = new Uint8Array(order.length);
  let tmp: Float64Array | null = null;
  for (let s = 0; s < order.length; s++) {
    if (done[s] === 1 || order[s] === s) continue;
    tmp ??= new Float64Array(len);
    tmp.set(x.subarray((c0 + s) * len, (c0 + s + 1) * len));
    for (let dst = s;;) {
      done[dst] = 1;
      const src = order[dst];
      if (src === s) {
        x.set(tmp, (c0 + dst) * len);
        break;
      }
      x.copyWithin((c0 + dst) * len, (c0 + src) * len, (c0 + src + 1) * len);
      dst = src;
    }
  }
}
