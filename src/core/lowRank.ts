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
 *
 * The QR is blocked (panels of {@link PANEL} columns, compact WY: H_1…H_b = I − Y·T·Yᵀ), so nearly
 * all of the O((out + in)·m²) work is matrix products. The algorithm is written once, as a generator
 * that yields its products ({@link GemmRequest}); {@link refactorLowRank} computes them in TypeScript
 * (synchronous, for the strategies), {@link refactorLowRankWith} on a {@link GemmBackend} (the
 * onnxruntime one in src/runtime/kernels/gemm64.ts, about 20× faster per product).
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
  /** Numerical rank of ΔW: directions with σ_i > σ_1 · 2⁻²⁶ (the resolution of σ_i = ‖C·v_i‖ from CᵀC; below float32's 2⁻²⁴). */
  readonly exactRank: number;
  /** Inner size m of the stacked factors. */
  readonly innerDim: number;
  /** ‖ΔW‖_F. */
  readonly norm: number;
  /** ‖ΔW − B·A‖_F in float64: the directions below the resolution at full rank (about 1e-9 of ‖ΔW‖ when there are any), more when truncated. */
  readonly truncationError: number;
  /** truncationError / norm (0 for ΔW = 0). */
  readonly relativeError: number;
  /** σ_1 ≥ σ_2 ≥ … of ΔW (as many as the core has). */
  readonly singularValues: Float64Array;
}

/**
 * out = op(A)·op(B) (or out −= op(A)·op(B) with `subtract`), row-major float64; out is m × n, op(A)
 * m × k, op(B) k × n.
 */
export interface GemmRequest {
  readonly transA: boolean;
  readonly transB: boolean;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly a: Float64Array;
  readonly b: Float64Array;
  readonly out: Float64Array;
  readonly subtract?: boolean;
}

/** Computes {@link GemmRequest}s (the seam for a native implementation). */
export interface GemmBackend {
  readonly name: string;
  gemm(request: GemmRequest): Promise<void>;
  dispose?(): Promise<void>;
}

type Products<T> = Generator<GemmRequest, T, void>;

/**
 * Singular values below σ_1·2⁻²⁶ are not resolved: they come from the eigenvalues of CᵀC, whose
 * absolute accuracy is about 2⁻⁵²·σ_1², so a direction of ΔW that is zero reads as up to ~3e-9·σ_1
 * (measured, docs/benchmarks.md). Such directions are dropped and their share reported; they are also
 * below the float32 rounding (2⁻²⁴) of the factors that get written.
 */
const RESOLUTION = 2 ** -26;
const EPS = 2 ** -52;
/** Columns per QR panel. */
const PANEL = 32;

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
      // P_j (out × k, row-major) into columns col.. of column-major P, in 16 × 16 tiles.
      for (let o0 = 0; o0 < out; o0 += 16) {
        const o1 = Math.min(out, o0 + 16);
        for (let c0 = 0; c0 < k; c0 += 16) {
          const c1 = Math.min(k, c0 + 16);
          for (let o = o0; o < o1; o++) for (let c = c0; c < c1; c++) p[(col + c) * out + o] = t.scale * pd[o * k + c];
        }
      }
      for (let c = 0; c < k; c++) qt.set(qd.subarray(c * inF, (c + 1) * inF), (col + c) * inF);
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

/** One panel of a blocked Householder QR: H_j0 … H_j0+nb−1 = I − Y·T·Yᵀ. */
interface WyBlock {
  readonly nb: number;
  /** Yᵀ (nb × n, row-major): row l is v_{j0+l} (zeros before j0+l, then 1, then the reflector). */
  readonly yt: Float64Array;
  /** T (nb × nb, upper triangular, row-major). */
  readonly t: Float64Array;
}

/** A thin Householder QR: R (t × m, row-major, t = min(n, m)) and Q as compact-WY blocks. */
export interface HouseholderQR {
  readonly n: number;
  readonly m: number;
  readonly t: number;
  readonly r: Float64Array;
  readonly blocks: readonly WyBlock[];
}

/**
 * Householder QR of X (n × m), given as `xt` = Xᵀ row-major (X's columns contiguous), overwritten.
 * Panels are factored column by column; each panel's reflectors update the columns right of it as
 * two products (C ← C − Y·(Tᵀ·(Yᵀ·C))).
 */
function* blockedQR(xt: Float64Array, n: number, m: number): Products<HouseholderQR> {
  const t = Math.min(n, m);
  const blocks: WyBlock[] = [];
  for (let j0 = 0; j0 < t; j0 += PANEL) {
    const j1 = Math.min(t, j0 + PANEL);
    const nb = j1 - j0;
    const tau = new Float64Array(nb);
    for (let j = j0; j < j1; j++) {
      const cj = j * n;
      let amax = 0;
      for (let i = j; i < n; i++) amax = Math.max(amax, Math.abs(xt[cj + i]));
      if (amax === 0) continue;
      let ss = 0;
      for (let i = j; i < n; i++) {
        const v = xt[cj + i] / amax;
        ss += v * v;
      }
      const alpha = amax * Math.sqrt(ss);
      const x0 = xt[cj + j];
      const beta = x0 >= 0 ? -alpha : alpha;
      const denom = x0 - beta;
      for (let i = j + 1; i < n; i++) xt[cj + i] /= denom;
      const tj = (beta - x0) / beta;
      tau[j - j0] = tj;
      xt[cj + j] = beta;
      reflectColumns(xt, n, cj, j, tj, xt, j + 1, j1);
    }
    const yt = new Float64Array(nb * n);
    for (let l = 0; l < nb; l++) {
      const j = j0 + l;
      yt[l * n + j] = 1;
      yt.set(xt.subarray(j * n + j + 1, (j + 1) * n), l * n + j + 1);
    }
    const tm = triangularFactor(yt, tau, nb, n, j0);
    blocks.push({ nb, yt, t: tm });
    const rest = m - j1;
    if (rest > 0) {
      const ct = xt.subarray(j1 * n, m * n);
      const wMat = new Float64Array(nb * rest);
      yield { transA: false, transB: true, m: nb, n: rest, k: n, a: yt, b: ct, out: wMat };
      const w2 = upperTimes(tm, nb, wMat, rest, true);
      yield { transA: true, transB: false, m: rest, n, k: nb, a: w2, b: yt, out: ct, subtract: true };
    }
  }
  const r = new Float64Array(t * m);
  for (let k = 0; k < m; k++) for (let i = 0; i <= Math.min(k, t - 1); i++) r[i * m + k] = xt[k * n + i];
  return { n, m, t, r, blocks };
}

/**
 * T of a compact-WY block (LAPACK's dlarft, forward and columnwise): H_1…H_nb = I − Y·T·Yᵀ for the
 * reflectors in the rows of Yᵀ (`yt`, nb × n), row l starting with its 1 at `start + l`:
 * T[0:l, l] = −τ_l·T[0:l, 0:l]·(Y[:, 0:l]ᵀ·y_l), T[l][l] = τ_l.
 */
function triangularFactor(yt: Float64Array, tau: Float64Array, nb: number, n: number, start: number): Float64Array {
  const tm = new Float64Array(nb * nb);
  const w = new Float64Array(nb);
  for (let l = 0; l < nb; l++) {
    const tl = tau[l];
    tm[l * nb + l] = tl;
    if (tl === 0 || l === 0) continue;
    const from = start + l;
    for (let q = 0; q < l; q++) {
      let d = 0;
      for (let i = from; i < n; i++) d += yt[q * n + i] * yt[l * n + i];
      w[q] = d;
    }
    for (let q = 0; q < l; q++) {
      let acc = 0;
      for (let z = q; z < l; z++) acc += tm[q * nb + z] * w[z];
      tm[q * nb + l] = -tl * acc;
    }
  }
  return tm;
}

/** T·W or Tᵀ·W for T upper triangular (nb × nb) and W (nb × cols), row-major. */
function upperTimes(tm: Float64Array, nb: number, w: Float64Array, cols: number, transposeT: boolean): Float64Array {
  const out = new Float64Array(nb * cols);
  for (let a = 0; a < nb; a++) {
    const oa = a * cols;
    // Tᵀ·W: row a = Σ_{l ≤ a} T[l][a]·W[l]; T·W: row a = Σ_{l ≥ a} T[a][l]·W[l].
    const [l0, l1] = transposeT ? [0, a + 1] : [a, nb];
    for (let l = l0; l < l1; l++) {
      const f = transposeT ? tm[l * nb + a] : tm[a * nb + l];
      if (f === 0) continue;
      const wl = l * cols;
      for (let c = 0; c < cols; c++) out[oa + c] += f * w[wl + c];
    }
  }
  return out;
}

/** Q·Z for the Q of a QR, Z (n × k) given as `zt` = Zᵀ row-major with Z's first t rows set; overwritten. */
function* applyQ(qr: HouseholderQR, zt: Float64Array, k: number): Products<void> {
  const { n } = qr;
  for (let bi = qr.blocks.length - 1; bi >= 0; bi--) {
    const { nb, yt, t } = qr.blocks[bi];
    const w = new Float64Array(nb * k);
    yield { transA: false, transB: true, m: nb, n: k, k: n, a: yt, b: zt, out: w };
    const w2 = upperTimes(t, nb, w, k, false);
    yield { transA: true, transB: false, m: k, n, k: nb, a: w2, b: yt, out: zt, subtract: true };
  }
}

/**
 * Householder QR of the column-major n × m matrix `x` (overwritten), products in TypeScript: R
 * (t × m, row-major, t = min(n, m)) and Q as blocks for {@link applyHouseholderQ}.
 */
export function householderQR(x: Float64Array, n: number, m: number): HouseholderQR {
  return runSync(blockedQR(x, n, m));
}

/** Q·Y for a {@link householderQR}: `y` is column-major n × k with Y in its first t rows (zeros below); overwritten. */
export function applyHouseholderQ(qr: HouseholderQR, y: Float64Array, k: number): void {
  runSync(applyQ(qr, y, k));
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
 * Householder tridiagonalization, implicit QL with Wilkinson shifts on the tridiagonal, then the
 * reflectors applied back in compact-WY blocks (products); accurate to about n·2⁻⁵²·‖a‖ in the
 * residual and the orthogonality.
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  return runSync(eigenProducts(a, n));
}

function* eigenProducts(a: Float64Array, n: number): Products<{ values: Float64Array; vectors: Float64Array }> {
  const count = Math.max(0, n - 2);
  // Row k of `refl`: the reflector H_k = I − τ_k·v·vᵀ that zeroes a[k+2.., k] (its 1 at k + 1).
  const refl = new Float64Array(count * n);
  const tau = new Float64Array(count);
  const p = new Float64Array(n);
  for (let k = 0; k < count; k++) {
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
    const v = refl.subarray(k * n, (k + 1) * n);
    v[lo] = 1;
    for (let i = lo + 1; i < n; i++) v[i] = a[i * n + k] / denom;
    const tk = (beta - x0) / beta;
    tau[k] = tk;
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
  }
  const d = new Float64Array(n);
  const e = new Float64Array(n); // e[i] = T[i][i + 1]
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  for (let i = 0; i < n - 1; i++) e[i] = a[i * n + i + 1];
  // QL on T = Z_ql·Λ·Z_qlᵀ with the rotations on the rows of zt = Z_qlᵀ.
  const zt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) zt[i * n + i] = 1;
  tridiagonalQL(d, e, zt, n);
  // Eigenvectors as rows: (Z_hh·Z_ql)ᵀ = zt·H_{n−3}·…·H_0, a block at a time from the last:
  // M·(H_k0 … H_k1−1)ᵀ = M − (M·Y)·Tᵀ·Yᵀ.
  for (let k1 = count; k1 > 0; k1 -= PANEL) {
    const k0 = Math.max(0, k1 - PANEL);
    const nb = k1 - k0;
    const yt = refl.subarray(k0 * n, k1 * n);
    const tm = triangularFactor(yt, tau.subarray(k0, k1), nb, n, k0 + 1);
    const my = new Float64Array(n * nb);
    yield { transA: false, transB: true, m: n, n: nb, k: n, a: zt, b: yt, out: my };
    // (M·Y)·Tᵀ, row by row: (M·Y·Tᵀ)[r][a] = Σ_{l ≥ a} (M·Y)[r][l]·T[a][l].
    const myt = new Float64Array(n * nb);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < nb; c++) {
        let acc = 0;
        for (let l = c; l < nb; l++) acc += my[r * nb + l] * tm[c * nb + l];
        myt[r * nb + c] = acc;
      }
    }
    yield { transA: false, transB: false, m: n, n, k: nb, a: myt, b: yt, out: zt, subtract: true };
  }
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
 * ΔW = Σ terms as B·A (module docs), products in TypeScript. `out` × `inF` is ΔW's shape in the
 * linear orientation (out × in). With no terms, or ΔW = 0, the result has rank 0.
 */
export function refactorLowRank(terms: readonly UpdateTerm[], out: number, inF: number, options: RefactorOptions = {}): Refactored {
  return truncateLowRank(runSync(refactorProducts(terms, out, inF)), options);
}

/** {@link refactorLowRank} with the products computed by `backend`. */
export async function refactorLowRankWith(backend: GemmBackend, terms: readonly UpdateTerm[], out: number, inF: number, options: RefactorOptions = {}): Promise<Refactored> {
  const gen = refactorProducts(terms, out, inF);
  let step = gen.next();
  while (step.done !== true) {
    await backend.gemm(step.value);
    step = gen.next();
  }
  return truncateLowRank(step.value, options);
}

function runSync<T>(gen: Products<T>): T {
  let step = gen.next();
  while (step.done !== true) {
    typeScriptGemm(step.value);
    step = gen.next();
  }
  return step.value;
}

/** The exact factorization (every direction above the rank floor), its products yielded. */
function* refactorProducts(terms: readonly UpdateTerm[], out: number, inF: number): Products<Refactored> {
  if (inF > out) {
    // Work on ΔWᵀ = Σ s·Qᵀ·Pᵀ so that the reflector side (the costlier one) is the smaller dimension.
    const t = yield* refactorProducts(terms.map(transposeTerm), inF, out);
    return { ...t, b: transposed(t.a), a: transposed(t.b) };
  }
  const { p, qt, m } = stack(terms, out, inF);
  const pt = p.slice(); // Pᵀ row-major (m × out), kept for B = P·X
  const { r: rp, t: tp } = yield* blockedQR(p, out, m);
  const qrQ = yield* blockedQR(qt, inF, m);
  const { r: rq, t: tq } = qrQ;
  // C = R_p·R_qᵀ (tp × tq), G = CᵀC (tq × tq), its eigenvectors V (rows), and C·v_c (rows of V·Cᵀ).
  const core = new Float64Array(tp * tq);
  if (tp * tq > 0) yield { transA: false, transB: true, m: tp, n: tq, k: m, a: rp, b: rq, out: core };
  const gram = new Float64Array(tq * tq);
  if (tq > 0) yield { transA: true, transB: false, m: tq, n: tq, k: tp, a: core, b: core, out: gram };
  for (let a = 0; a < tq; a++) for (let b = 0; b < a; b++) gram[a * tq + b] = gram[b * tq + a] = (gram[a * tq + b] + gram[b * tq + a]) / 2;
  const { vectors } = yield* eigenProducts(gram, tq);
  const cv = new Float64Array(tq * tp);
  if (tq * tp > 0) yield { transA: false, transB: true, m: tq, n: tp, k: tq, a: vectors, b: core, out: cv };
  const sigma = new Float64Array(tq);
  for (let c = 0; c < tq; c++) {
    let ss = 0;
    for (let i = 0; i < tp; i++) ss += cv[c * tp + i] ** 2;
    sigma[c] = Math.sqrt(ss);
  }
  const order = [...sigma.keys()].sort((x, y) => sigma[y] - sigma[x]);
  const sorted = Float64Array.from(order, (c) => sigma[c]);
  const norm = Math.sqrt(sorted.reduce((s, x) => s + x * x, 0));
  const floor = (sorted[0] ?? 0) * RESOLUTION;
  let rank = 0;
  while (rank < sorted.length && sorted[rank] > floor && sorted[rank] > 0) rank++;
  const vk = new Float64Array(rank * tq);
  for (let c = 0; c < rank; c++) vk.set(vectors.subarray(order[c] * tq, (order[c] + 1) * tq), c * tq);
  // Xᵀ = V_kᵀ·R_q (rank × m); B = P·X (out × rank); A = (Q_q·V_k)ᵀ (rank × in).
  const xt = new Float64Array(rank * m);
  const b = new Float64Array(out * rank);
  const a = new Float64Array(rank * inF);
  if (rank > 0) {
    yield { transA: false, transB: false, m: rank, n: m, k: tq, a: vk, b: rq, out: xt };
    yield { transA: true, transB: true, m: out, n: rank, k: m, a: pt, b: xt, out: b };
    for (let c = 0; c < rank; c++) a.set(vk.subarray(c * tq, (c + 1) * tq), c * inF);
    yield* applyQ(qrQ, a, rank);
  }
  // Balance: column c of B and row c of A each carry √σ_c.
  for (let c = 0; c < rank; c++) {
    const f = Math.sqrt(sorted[c]);
    for (let o = 0; o < out; o++) b[o * rank + c] /= f;
    for (let i = 0; i < inF; i++) a[c * inF + i] *= f;
  }
  let below2 = 0;
  for (let c = rank; c < sorted.length; c++) below2 += sorted[c] * sorted[c];
  const below = Math.sqrt(below2);
  return {
    b: { shape: [out, rank], data: b }, a: { shape: [rank, inF], data: a },
    rank, exactRank: rank, innerDim: m, norm, truncationError: below, relativeError: norm === 0 ? 0 : below / norm, singularValues: sorted,
  };
}

/** A {@link GemmRequest} in TypeScript: operands brought to A (m × k) and Bᵀ (n × k), then 2 × 2 blocks of dot products. */
export function typeScriptGemm(r: GemmRequest): void {
  const a = r.transA ? transposeRows(r.a, r.k, r.m) : r.a;
  const bt = r.transB ? r.b : transposeRows(r.b, r.k, r.n);
  if (r.subtract !== true) {
    multiplyNT(a, r.m, r.k, bt, r.n, r.out);
    return;
  }
  const d = new Float64Array(r.m * r.n);
  multiplyNT(a, r.m, r.k, bt, r.n, d);
  for (let i = 0; i < d.length; i++) r.out[i] -= d[i];
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
function multiplyNT(a: Float64Array, rows: number, m: number, bt: Float64Array, k: number, out: Float64Array): void {
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
}

/** The transpose (cols × rows) of a row-major rows × cols matrix, in 8 × 8 tiles. */
function transposeRows(x: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r0 = 0; r0 < rows; r0 += 8) {
    const r1 = Math.min(rows, r0 + 8);
    for (let c0 = 0; c0 < cols; c0 += 8) {
      const c1 = Math.min(cols, c0 + 8);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = x[r * cols + c];
    }
  }
  return out;
}

/** The transpose of a matrix, in float64 (tiled, through {@link transposeRows}). */
function transposed(t: Matrix): Matrix<Float64Array> {
  const [rows, cols] = t.shape;
  const data = t.data instanceof Float64Array ? t.data : Float64Array.from(t.data);
  return { shape: [cols, rows], data: transposeRows(data, rows, cols) };
}

function transposeTerm(t: UpdateTerm): UpdateTerm {
  return t.kind === 'factored'
    ? { kind: 'factored', p: transposed(t.q), q: transposed(t.p), scale: t.scale }
    : { kind: 'dense', d: transposed(t.d), scale: t.scale };
}
