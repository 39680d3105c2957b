/**
 * One thin factorization B·A of a sum of low-rank products (docs/math.md §1.1, "Export"):
 *
 *   ΔW = Σ_j s_j·P_j·Q_j = P·Q,   P = [s_1 P_1 | … | s_J P_J] (out × m),   Q = [Q_1; …; Q_J] (m × in)
 *
 * A dense term s·D (out × in) joins the stack as (s·D, I) or (I, s·D), whichever side is smaller.
 * Everything is float64:
 *
 * 1. thin Householder QR on both sides: P = Q_p·R_p, Qᵀ = Q_q·R_q (R upper triangular, at most m × m);
 * 2. the small core C = R_p·R_qᵀ and its right singular vectors V, from the symmetric
 *    eigendecomposition of CᵀC (Householder tridiagonalization, then implicit QL);
 * 3. B = P·(R_qᵀ·V_k) and A = (Q_q·V_k)ᵀ, columns of B and rows of A rescaled by √σ_i, σ_i = ‖C·v_i‖.
 *
 * So B·A = P·R_qᵀ·V_k·V_kᵀ·Q_qᵀ, which is P·Q = ΔW when V_k holds every direction with σ_i > 0,
 * whatever the accuracy of the individual singular vectors (V is orthogonal): exactness needs no
 * division by a singular value, and nearly dependent columns in P or Q are harmless. Truncating to
 * k directions loses exactly ‖C·V_tail‖_F (Q_p and Q_q are orthonormal), the error reported. The
 * side applied through Householder reflectors (4·n·m·k flops) is the smaller of out and in; the other
 * is one product (2·n·m·k). Cost O((out + in)·m² + m³); the dense out × in matrix is never formed.
 */
import type { Matrix } from './tensor.js';

/** One term of ΔW: s·P·Q (P out × inner, Q inner × in) or s·D (D out × in). Row-major. */
export type UpdateTerm =
  | { readonly kind: 'factored'; readonly p: Matrix; readonly q: Matrix; readonly scale: number }
  | { readonly kind: 'dense'; readonly d: Matrix; readonly scale: number };

/** How many directions to keep: at most `maxRank`, and fewer when the dropped share stays within `maxRelativeError`. */
export interface RefactorOptions {
  readonly maxRank?: number;
  /** Largest ‖ΔW − B·A‖_F / ‖ΔW‖_F accepted to lower the rank (default 0: only exactly zero directions go). */
  readonly maxRelativeError?: number;
}

/** ΔW ≈ B·A with what was kept and lost. */
export interface Refactored {
  /** out × rank */
  readonly b: Matrix<Float64Array>;
  /** rank × in */
  readonly a: Matrix<Float64Array>;
  /** Directions kept. */
  readonly rank: number;
  /** Numerical rank of ΔW: directions with σ_i > σ_1 · max(out, in, m) · 2⁻⁵². */
  readonly exactRank: number;
  /** Inner size m of the stacked factors. */
  readonly innerDim: number;
  /** ‖ΔW‖_F. */
  readonly norm: number;
  /** ‖ΔW − B·A‖_F in float64 (0 when every non-zero direction was kept). */
  readonly truncationError: number;
  /** truncationError / norm (0 for ΔW = 0). */
  readonly relativeError: number;
  /** σ_1 ≥ σ_2 ≥ … of ΔW (as many as the core has). */
  readonly singularValues: Float64Array;
}

const EPS = 2 ** -52;

/** The stacked factors of a sum of terms: P column-major (out × m), Qᵀ column-major (in × m). */
function stack(terms: readonly UpdateTerm[], out: number, inF: number): { p: Float64Array; qt: Float64Array; m: number } {
  const inner = (t: UpdateTerm): number => (t.kind === 'factored' ? t.p.shape[1] : Math.min(out, inF));
  const m = terms.reduce((n, t) => n + inner(t), 0);
  const p = new Float64Array(out * m);
  const qt = new Float64Array(inF * m);
  let col = 0;
  for (const [j, t] of terms.entries()) {
    if (t.kind === 'factored') {
      const k = t.p.shape[1];
      if (t.p.shape[0] !== out || t.q.shape[0] !== k || t.q.shape[1] !== inF) {
        throw new RangeError(`refactor: term ${j} has P ${t.p.shape.join('×')} and Q ${t.q.shape.join('×')}, expected ${out}×k and k×${inF}`);
      }
      const pd = t.p.data;
      const qd = t.q.data;
      for (let c = 0; c < k; c++) {
        const pc = (col + c) * out;
        for (let o = 0; o < out; o++) p[pc + o] = t.scale * pd[o * k + c];
        qt.set(qd.subarray(c * inF, (c + 1) * inF), (col + c) * inF);
      }
      col += k;
    } else {
      if (t.d.shape[0] !== out || t.d.shape[1] !== inF) throw new RangeError(`refactor: dense term ${j} is ${t.d.shape.join('×')}, expected ${out}×${inF}`);
      const dd = t.d.data;
      if (inF <= out) {
        // s·D = (s·D)·I: D's columns join P, the identity joins Q.
        for (let c = 0; c < inF; c++) {
          for (let o = 0; o < out; o++) p[(col + c) * out + o] = t.scale * dd[o * inF + c];
          qt[(col + c) * inF + c] = 1;
        }
        col += inF;
      } else {
        for (let c = 0; c < out; c++) {
          p[(col + c) * out + c] = 1;
          for (let i = 0; i < inF; i++) qt[(col + c) * inF + i] = t.scale * dd[c * inF + i];
        }
        col += out;
      }
    }
  }
  return { p, qt, m };
}

/**
 * Householder QR of the column-major n × m matrix `x`, in place: R in the upper triangle, the
 * reflectors H_j = I − τ_j·v_j·v_jᵀ (v_j[j] = 1 implied) below it. Returns R (t × m, row-major,
 * t = min(n, m)) and τ.
 */
export function householderQR(x: Float64Array, n: number, m: number): { r: Float64Array; tau: Float64Array; t: number } {
  const t = Math.min(n, m);
  const tau = new Float64Array(t);
  for (let j = 0; j < t; j++) {
    const cj = j * n;
    let amax = 0;
    for (let i = j; i < n; i++) amax = Math.max(amax, Math.abs(x[cj + i]));
    if (amax === 0) continue;
    let ss = 0;
    for (let i = j; i < n; i++) {
      const v = x[cj + i] / amax;
      ss += v * v;
    }
    const alpha = amax * Math.sqrt(ss);
    const x0 = x[cj + j];
    const beta = x0 >= 0 ? -alpha : alpha;
    const denom = x0 - beta;
    for (let i = j + 1; i < n; i++) x[cj + i] /= denom;
    const tj = (beta - x0) / beta;
    tau[j] = tj;
    x[cj + j] = beta;
    reflectColumns(x, n, cj, j, tj, x, j + 1, m);
  }
  const r = new Float64Array(t * m);
  for (let k = 0; k < m; k++) for (let i = 0; i <= Math.min(k, t - 1); i++) r[i * m + k] = x[k * n + i];
  return { r, tau, t };
}

/** Q·Y for the Q of {@link householderQR}: `y` is column-major n × k with Y in its first t rows (zeros below); overwritten. */
export function applyHouseholderQ(x: Float64Array, n: number, tau: Float64Array, y: Float64Array, k: number): void {
  for (let j = tau.length - 1; j >= 0; j--) if (tau[j] !== 0) reflectColumns(x, n, j * n, j, tau[j], y, 0, k);
}

/**
 * Applies H = I − τ·v·vᵀ (v = [1; x[cj + j + 1 .. cj + n)] on rows j..n) to columns [c0, c1) of the
 * column-major n-row matrix `y`, four columns per pass over v (a quarter of the reads of v).
 */
function reflectColumns(x: Float64Array, n: number, cj: number, j: number, tj: number, y: Float64Array, c0: number, c1: number): void {
  let c = c0;
  for (; c + 3 < c1; c += 4) {
    const ca = c * n;
    const cb = ca + n;
    const cc = cb + n;
    const cd = cc + n;
    let sa = y[ca + j];
    let sb = y[cb + j];
    let sc = y[cc + j];
    let sd = y[cd + j];
    for (let i = j + 1; i < n; i++) {
      const v = x[cj + i];
      sa += v * y[ca + i];
      sb += v * y[cb + i];
      sc += v * y[cc + i];
      sd += v * y[cd + i];
    }
    sa *= tj;
    sb *= tj;
    sc *= tj;
    sd *= tj;
    y[ca + j] -= sa;
    y[cb + j] -= sb;
    y[cc + j] -= sc;
    y[cd + j] -= sd;
    for (let i = j + 1; i < n; i++) {
      const v = x[cj + i];
      y[ca + i] -= sa * v;
      y[cb + i] -= sb * v;
      y[cc + i] -= sc * v;
      y[cd + i] -= sd * v;
    }
  }
  for (; c < c1; c++) {
    const ca = c * n;
    let s = y[ca + j];
    for (let i = j + 1; i < n; i++) s += x[cj + i] * y[ca + i];
    s *= tj;
    y[ca + j] -= s;
    for (let i = j + 1; i < n; i++) y[ca + i] -= s * x[cj + i];
  }
}

/**
 * Eigendecomposition of the symmetric n × n matrix `a` (row-major; destroyed): eigenvalues in
 * descending order and the eigenvectors as the rows of `vectors` (row i belongs to value i).
 * Householder tridiagonalization, then QL with implicit Wilkinson shifts; accurate to about
 * n·2⁻⁵²·‖a‖ in the residual and the orthogonality.
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const zt = new Float64Array(n * n); // row i: column i of Z, where a = Z·T·Zᵀ
  for (let i = 0; i < n; i++) zt[i * n + i] = 1;
  const d = new Float64Array(n);
  const e = new Float64Array(n); // e[i] = T[i][i + 1]
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    // Reflector on rows/columns k+1.. that zeroes a[k+2.., k].
    const lo = k + 1;
    let amax = 0;
    for (let i = lo; i < n; i++) amax = Math.max(amax, Math.abs(a[i * n + k]));
    if (amax === 0) continue;
    let ss = 0;
    for (let i = lo; i < n; i++) {
      const x = a[i * n + k] / amax;
      ss += x * x;
    }
    const alpha = amax * Math.sqrt(ss);
    const x0 = a[lo * n + k];
    const beta = x0 >= 0 ? -alpha : alpha;
    const denom = x0 - beta;
    v[lo] = 1;
    for (let i = lo + 1; i < n; i++) v[i] = a[i * n + k] / denom;
    const tk = (beta - x0) / beta;
    // p = τ·A'·v, w = p − (τ/2)(pᵀv)·v, A' −= v·wᵀ + w·vᵀ.
    let pv = 0;
    for (let i = lo; i < n; i++) {
      let s = 0;
      const ri = i * n;
      for (let j = lo; j < n; j++) s += a[ri + j] * v[j];
      p[i] = tk * s;
      pv += p[i] * v[i];
    }
    const half = (tk / 2) * pv;
    for (let i = lo; i < n; i++) p[i] -= half * v[i];
    for (let i = lo; i < n; i++) {
      const ri = i * n;
      const vi = v[i];
      const wi = p[i];
      for (let j = lo; j < n; j++) a[ri + j] -= vi * p[j] + wi * v[j];
    }
    a[lo * n + k] = beta;
    a[k * n + lo] = beta;
    for (let i = lo + 1; i < n; i++) {
      a[i * n + k] = 0;
      a[k * n + i] = 0;
    }
    // Z ← Z·H_k, i.e. Zᵀ ← H_k·Zᵀ on rows lo..: Zᵀ −= τ·v·(vᵀZᵀ).
    const u = new Float64Array(n);
    for (let i = lo; i < n; i++) {
      const vi = v[i];
      const ri = i * n;
      for (let j = 0; j < n; j++) u[j] += vi * zt[ri + j];
    }
    for (let i = lo; i < n; i++) {
      const f = tk * v[i];
      const ri = i * n;
      for (let j = 0; j < n; j++) zt[ri + j] -= f * u[j];
    }
  }
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  for (let i = 0; i < n - 1; i++) e[i] = a[i * n + i + 1];
  tridiagonalQL(d, e, zt, n);
  const order = [...d.keys()].sort((x, y) => d[y] - d[x]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src];
    vectors.set(zt.subarray(src * n, (src + 1) * n), dst * n);
  });
  return { values, vectors };
}

/** Implicit QL on the tridiagonal (d, e) with e[i] = T[i][i+1]; rotations applied to the rows of `zt`. */
function tridiagonalQL(d: Float64Array, e: Float64Array, zt: Float64Array, n: number): void {
  for (let l = 0; l < n; l++) {
    for (let iter = 0; ; iter++) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= EPS * dd) break;
      }
      if (m === l) break;
      if (iter === 60) throw new Error(`symmetricEigen: no convergence for eigenvalue ${l} of ${n}`);
      // Wilkinson shift from the leading 2 × 2 block at l.
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let pShift = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] -= pShift;
          e[m] = 0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - pShift;
        r = (d[i] - g) * s + 2 * c * b;
        pShift = s * r;
        d[i + 1] = g + pShift;
        g = c * r - b;
        // Rotate eigenvector rows i and i+1.
        const ri = i * n;
        const rj = (i + 1) * n;
        for (let k = 0; k < n; k++) {
          const zi = zt[ri + k];
          const zj = zt[rj + k];
          zt[rj + k] = s * zi + c * zj;
          zt[ri + k] = c * zi - s * zj;
        }
      }
      if (underflow) continue;
      d[l] -= pShift;
      e[l] = g;
      e[m] = 0;
    }
  }
}

/**
 * ΔW = Σ terms as B·A (module docs). `out` × `inF` is ΔW's shape in the linear orientation (out × in).
 * With no terms, or ΔW = 0, the result has rank 0.
 */
export function refactorLowRank(terms: readonly UpdateTerm[], out: number, inF: number, options: RefactorOptions = {}): Refactored {
  if (inF > out) {
    // Work on ΔWᵀ = Σ s·Qᵀ·Pᵀ so that the reflector side (the costlier one) is the smaller dimension.
    const t = refactorLowRank(terms.map(transposeTerm), inF, out, options);
    return { ...t, b: transpose(t.a), a: transpose(t.b) };
  }
  const { p, qt, m } = stack(terms, out, inF);
  const pRows = transposeColumnMajor(p, out, m);
  const { r: rp, t: tp } = householderQR(p, out, m);
  const { r: rq, tau: tauQ, t: tq } = householderQR(qt, inF, m);
  // C = R_p·R_qᵀ (tp × tq): C[i][l] = Σ_{j ≥ max(i, l)} R_p[i][j]·R_q[l][j].
  const core = new Float64Array(tp * tq);
  for (let i = 0; i < tp; i++) {
    for (let l = 0; l < tq; l++) {
      let s = 0;
      for (let j = Math.max(i, l); j < m; j++) s += rp[i * m + j] * rq[l * m + j];
      core[i * tq + l] = s;
    }
  }
  // G = CᵀC (tq × tq), its eigenvectors V, and C·V with σ_i = ‖C·v_i‖.
  const gram = new Float64Array(tq * tq);
  for (let i = 0; i < tp; i++) {
    const ri = i * tq;
    for (let a = 0; a < tq; a++) {
      const ca = core[ri + a];
      if (ca === 0) continue;
      for (let b = a; b < tq; b++) gram[a * tq + b] += ca * core[ri + b];
    }
  }
  for (let a = 0; a < tq; a++) for (let b = 0; b < a; b++) gram[a * tq + b] = gram[b * tq + a];
  const { vectors } = symmetricEigen(gram, tq); // row c: v_c
  const sigma = new Float64Array(tq);
  for (let c = 0; c < tq; c++) {
    const vc = vectors.subarray(c * tq, (c + 1) * tq);
    let ss = 0;
    for (let i = 0; i < tp; i++) {
      let s = 0;
      const ri = i * tq;
      for (let l = 0; l < tq; l++) s += core[ri + l] * vc[l];
      ss += s * s;
    }
    sigma[c] = Math.sqrt(ss);
  }
  const order = [...sigma.keys()].sort((x, y) => sigma[y] - sigma[x]);
  const sorted = Float64Array.from(order, (c) => sigma[c]);
  const total2 = sorted.reduce((s, x) => s + x * x, 0);
  const norm = Math.sqrt(total2);
  const floor = (sorted[0] ?? 0) * Math.max(out, inF, m) * EPS;
  let exactRank = 0;
  while (exactRank < sorted.length && sorted[exactRank] > floor && sorted[exactRank] > 0) exactRank++;
  const rank = exactRank;
  // X = R_qᵀ·V_k (m × rank, kept transposed); B = P·X (out × rank).
  const xt = new Float64Array(rank * m);
  for (let c = 0; c < rank; c++) {
    const vc = vectors.subarray(order[c] * tq, (order[c] + 1) * tq);
    const xc = c * m;
    for (let l = 0; l < tq; l++) {
      const vl = vc[l];
      if (vl === 0) continue;
      const rl = l * m;
      for (let j = l; j < m; j++) xt[xc + j] += rq[rl + j] * vl;
    }
  }
  const b = multiplyNT(pRows, out, m, xt, rank);
  // A = (Q_q·V_k)ᵀ: the reflectors applied to [V_k; 0] (column-major in × rank = A row-major).
  const a = new Float64Array(rank * inF);
  for (let c = 0; c < rank; c++) a.set(vectors.subarray(order[c] * tq, (order[c] + 1) * tq), c * inF);
  applyHouseholderQ(qt, inF, tauQ, a, rank);
  // Balance: column c of B and row c of A each carry √σ_c.
  for (let c = 0; c < rank; c++) {
    const f = Math.sqrt(sorted[c]);
    for (let o = 0; o < out; o++) b[o * rank + c] /= f;
    for (let i = 0; i < inF; i++) a[c * inF + i] *= f;
  }
  const full: Refactored = {
    b: { shape: [out, rank], data: b }, a: { shape: [rank, inF], data: a },
    rank, exactRank, innerDim: m, norm, truncationError: 0, relativeError: 0, singularValues: sorted,
  };
  return truncateLowRank(full, options);
}

/**
 * The rank `options` allow for a factorization (at most `maxRank`; lower while the dropped tail of
 * singular values stays within `maxRelativeError`·‖ΔW‖), never above its exact rank.
 */
export function chosenRank(singularValues: Float64Array, exactRank: number, norm: number, options: RefactorOptions): number {
  let rank = Math.min(exactRank, options.maxRank ?? Infinity);
  const budget = (options.maxRelativeError ?? 0) * norm;
  if (budget <= 0) return rank;
  let tail2 = 0;
  for (let k = exactRank; k > 0; k--) {
    const next = tail2 + singularValues[k - 1] * singularValues[k - 1];
    if (Math.sqrt(next) > budget) break;
    tail2 = next;
    rank = Math.min(rank, k - 1);
  }
  return rank;
}

/**
 * The leading directions of an exact factorization (from {@link refactorLowRank}) that `options`
 * keep: the first columns of B and rows of A, the best approximation of that rank (Eckart–Young),
 * with the error ‖C·V_tail‖_F it makes.
 */
export function truncateLowRank(full: Refactored, options: RefactorOptions): Refactored {
  const rank = chosenRank(full.singularValues, full.exactRank, full.norm, options);
  if (rank === full.rank) return full;
  if (rank > full.rank) throw new RangeError(`truncateLowRank: the factorization holds ${full.rank} directions, ${rank} asked`);
  const [out, had] = full.b.shape;
  const inF = full.a.shape[1];
  const b = new Float64Array(out * rank);
  for (let o = 0; o < out; o++) b.set(full.b.data.subarray(o * had, o * had + rank), o * rank);
  const a = full.a.data.slice(0, rank * inF);
  let tail2 = 0;
  for (let c = rank; c < full.singularValues.length; c++) tail2 += full.singularValues[c] ** 2;
  const truncationError = Math.sqrt(tail2);
  return {
    ...full, b: { shape: [out, rank], data: b }, a: { shape: [rank, inF], data: a }, rank,
    truncationError, relativeError: full.norm === 0 ? 0 : truncationError / full.norm,
  };
}

/** A·Bᵀ for A (rows × m) and B (k × m), both row-major: rows × k, in 2 × 2 blocks of dot products. */
function multiplyNT(a: Float64Array, rows: number, m: number, bt: Float64Array, k: number): Float64Array {
  const out = new Float64Array(rows * k);
  for (let o = 0; o < rows; o += 2) {
    const a0 = o * m;
    const a1 = o + 1 < rows ? a0 + m : a0;
    for (let c = 0; c < k; c += 2) {
      const b0 = c * m;
      const b1 = c + 1 < k ? b0 + m : b0;
      let s00 = 0;
      let s01 = 0;
      let s10 = 0;
      let s11 = 0;
      for (let j = 0; j < m; j++) {
        const x0 = a[a0 + j];
        const x1 = a[a1 + j];
        const y0 = bt[b0 + j];
        const y1 = bt[b1 + j];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
      }
      out[o * k + c] = s00;
      if (c + 1 < k) out[o * k + c + 1] = s01;
      if (o + 1 < rows) {
        out[(o + 1) * k + c] = s10;
        if (c + 1 < k) out[(o + 1) * k + c + 1] = s11;
      }
    }
  }
  return out;
}

/** The row-major copy of a column-major rows × cols matrix, in 8 × 8 tiles. */
function transposeColumnMajor(x: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let c0 = 0; c0 < cols; c0 += 8) {
    const c1 = Math.min(cols, c0 + 8);
    for (let r0 = 0; r0 < rows; r0 += 8) {
      const r1 = Math.min(rows, r0 + 8);
      for (let c = c0; c < c1; c++) for (let r = r0; r < r1; r++) out[r * cols + c] = x[c * rows + r];
    }
  }
  return out;
}

function transpose(t: Matrix<Float64Array>): Matrix<Float64Array> {
  const [rows, cols] = t.shape;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = t.data[i * cols + j];
  return { shape: [cols, rows], data: out };
}

function transposeAny(t: Matrix): Matrix<Float64Array> {
  return transpose({ shape: t.shape, data: t.data instanceof Float64Array ? t.data : Float64Array.from(t.data) });
}

function transposeTerm(t: UpdateTerm): UpdateTerm {
  return t.kind === 'factored'
    ? { kind: 'factored', p: transposeAny(t.q), q: transposeAny(t.p), scale: t.scale }
    : { kind: 'dense', d: transposeAny(t.d), scale: t.scale };
}
