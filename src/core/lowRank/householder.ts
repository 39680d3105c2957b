/**
 * Blocked Householder QR (blocks of {@link BLOCK} columns, compact WY: H_1…H_b = I − Y·T·Yᵀ), so
 * that nearly all of its O(n·m²) work is matrix products, yielded to the caller (products.ts). Each
 * block's panel is itself factored recursively (halves down to {@link LEAF} columns, the left half's
 * reflectors applied to the right half as products, T assembled from the halves' T), so that only
 * leaves of LEAF columns are factored column by column in JavaScript.
 */
import { runSync, type Products } from './products.js';

/** Columns per block of the eigenvectors' back-transformation (eigen.ts). */
export const PANEL = 32;
/** Columns per QR block: the width of the trailing updates and of the blocks {@link applyQ} applies. */
export const BLOCK = 128;
/** Columns factored one by one in JavaScript at the bottom of a panel's recursion. */
export const LEAF = 16;

/** One block of a blocked Householder QR: H_j0 … H_j0+nb−1 = I − Y·T·Yᵀ. */
interface WyBlock {
  readonly nb: number;
  /** Yᵀ (nb × n, row-major): row l is v_{j0+l} (zeros before j0+l, then 1, then the reflector); a view of the factored matrix. */
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
 * Householder QR of X (n × m), given as `xt` = Xᵀ row-major (X's columns contiguous), overwritten:
 * its first t rows end up holding the reflectors (Yᵀ, unit diagonal, zeros above), which the
 * returned blocks view, so `xt` must stay untouched while they are used ({@link applyQ}). R is
 * copied out column by column as the columns are factored. Each block's panel is factored
 * recursively ({@link panelQR}); the block's reflectors then update the columns right of it as two
 * products (C ← C − Y·(Tᵀ·(Yᵀ·C))).
 */
export function* blockedQR(xt: Float64Array, n: number, m: number): Products<HouseholderQR> {
  const t = Math.min(n, m);
  const r = new Float64Array(t * m);
  const blocks: WyBlock[] = [];
  for (let j0 = 0; j0 < t; j0 += BLOCK) {
    const j1 = Math.min(t, j0 + BLOCK);
    const nb = j1 - j0;
    const tm = yield* panelQR(xt, n, m, r, j0, j1);
    const yt = xt.subarray(j0 * n, j1 * n);
    blocks.push({ nb, yt, t: tm });
    const rest = m - j1;
    if (rest > 0) yield* applyBlockTransposed(yt, tm, nb, n, xt.subarray(j1 * n, m * n), rest);
  }
  // Columns beyond t (m > n) are not factored: their R entries are what the reflectors left.
  for (let k = t; k < m; k++) for (let i = 0; i < t; i++) r[i * m + k] = xt[k * n + i];
  return { n, m, t, r, blocks };
}

/** C ← (I − Y·T·Yᵀ)ᵀ·C = C − Y·(Tᵀ·(Yᵀ·C)) for C (n × cols) given as `ct` = Cᵀ row-major. */
function* applyBlockTransposed(yt: Float64Array, tm: Float64Array, nb: number, n: number, ct: Float64Array, cols: number): Products<void> {
  const w = new Float64Array(nb * cols);
  yield { transA: false, transB: true, m: nb, n: cols, k: n, a: yt, b: ct, out: w };
  const w2 = upperTimes(tm, nb, w, cols, true);
  yield { transA: true, transB: false, m: cols, n, k: nb, a: w2, b: yt, out: ct, subtract: true };
}

/**
 * Factors columns [j0, j1) of the QR in progress (the reflectors of columns < j0 already applied to
 * them) and returns the T of their compact-WY block. Leaves of at most {@link LEAF} columns are
 * factored column by column; a wider panel as its left half (recursively), the left half's
 * reflectors applied to the right half, the right half (recursively), and
 * T = [T_L, −T_L·(Y_Lᵀ·Y_R)·T_R; 0, T_R] (LAPACK's dgeqrt3).
 */
function* panelQR(xt: Float64Array, n: number, m: number, r: Float64Array, j0: number, j1: number): Products<Float64Array> {
  const w = j1 - j0;
  if (w <= LEAF) {
    const tau = leafQR(xt, n, m, r, j0, j1);
    return yield* triangularFactor(xt.subarray(j0 * n, j1 * n), tau, w, n);
  }
  const mid = j0 + LEAF * Math.ceil(w / (2 * LEAF));
  const h = mid - j0;
  const wr = j1 - mid;
  const tl = yield* panelQR(xt, n, m, r, j0, mid);
  const yl = xt.subarray(j0 * n, mid * n);
  const yr = xt.subarray(mid * n, j1 * n);
  yield* applyBlockTransposed(yl, tl, h, n, yr, wr);
  const tr = yield* panelQR(xt, n, m, r, mid, j1);
  // T_12 = −T_L·(Y_Lᵀ·Y_R)·T_R.
  const s = new Float64Array(h * wr);
  yield { transA: false, transB: true, m: h, n: wr, k: n, a: yl, b: yr, out: s };
  const ts = upperTimes(tl, h, s, wr, false);
  const tm = new Float64Array(w * w);
  for (let a = 0; a < h; a++) {
    tm.set(tl.subarray(a * h, (a + 1) * h), a * w);
    // Row a of T_L·S·T_R: Σ_l (T_L·S)[a][l]·T_R[l][c], T_R upper triangular.
    const row = a * w + h;
    for (let l = 0; l < wr; l++) {
      const f = -ts[a * wr + l];
      if (f === 0) continue;
      for (let c = l; c < wr; c++) tm[row + c] += f * tr[l * wr + c];
    }
  }
  for (let a = 0; a < wr; a++) tm.set(tr.subarray(a * wr, (a + 1) * wr), (h + a) * w + h);
  return tm;
}

/**
 * Factors columns [j0, j1) column by column (the reflectors of columns < j0 already applied): for
 * each, its R entries are moved to `r` (row-major t × m) and replaced by the reflector's zeros and
 * unit diagonal, and its reflector is applied to the leaf's columns right of it. Returns the τ's.
 */
function leafQR(xt: Float64Array, n: number, m: number, r: Float64Array, j0: number, j1: number): Float64Array {
  const tau = new Float64Array(j1 - j0);
  for (let j = j0; j < j1; j++) {
    const cj = j * n;
    for (let i = 0; i < j; i++) {
      r[i * m + j] = xt[cj + i];
      xt[cj + i] = 0;
    }
    const tj = householderVector(xt, cj + j, cj + n);
    tau[j - j0] = tj;
    r[j * m + j] = xt[cj + j];
    xt[cj + j] = 1;
    if (tj === 0) continue;
    reflectColumns(xt, n, cj, j, tj, xt, j + 1, j1);
  }
  return tau;
}

/**
 * The Householder reflector H = I − τ·v·vᵀ with H·x = β·e_1 for x = `x[start .. end)`, in place: x[start]
 * becomes β (−sign(x_0)·‖x‖, the norm scaled by max |x_i| against overflow and underflow) and x[start + 1
 * .. end) the tail of v (v_0 = 1 implied). Returns τ = (β − x_0)/β, 0 (x left as it is) for x = 0.
 */
export function householderVector(x: Float64Array, start: number, end: number): number {
  let amax = 0;
  for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(x[i]));
  if (amax === 0) return 0;
  let ss = 0;
  for (let i = start; i < end; i++) {
    const v = x[i] / amax;
    ss += v * v;
  }
  const alpha = amax * Math.sqrt(ss);
  const x0 = x[start];
  const beta = x0 >= 0 ? -alpha : alpha;
  const denom = x0 - beta;
  for (let i = start + 1; i < end; i++) x[i] /= denom;
  x[start] = beta;
  return (beta - x0) / beta;
}

/**
 * T of a compact-WY block (LAPACK's dlarft, forward and columnwise): H_1…H_nb = I − Y·T·Yᵀ for the
 * reflectors in the rows of Yᵀ (`yt`, nb × n): T[0:l, l] = −τ_l·T[0:l, 0:l]·(Y[:, 0:l]ᵀ·y_l),
 * T[l][l] = τ_l, with every Y[:, q]ᵀ·y_l from one product S = Yᵀ·Y.
 */
export function* triangularFactor(yt: Float64Array, tau: Float64Array, nb: number, n: number): Products<Float64Array> {
  const s = new Float64Array(nb * nb);
  yield { transA: false, transB: true, m: nb, n: nb, k: n, a: yt, b: yt, out: s };
  const tm = new Float64Array(nb * nb);
  for (let l = 0; l < nb; l++) {
    const tl = tau[l];
    tm[l * nb + l] = tl;
    if (tl === 0 || l === 0) continue;
    for (let q = 0; q < l; q++) {
      let acc = 0;
      for (let z = q; z < l; z++) acc += tm[q * nb + z] * s[z * nb + l];
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
export function* applyQ(qr: HouseholderQR, zt: Float64Array, k: number): Products<void> {
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
