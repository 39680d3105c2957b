/**
 * Symmetric eigendecomposition (Householder tridiagonalization, implicit QL with Wilkinson shifts,
 * the reflectors applied back in compact-WY blocks as products), for the m × m core of the
 * re-factorization (core/lowRank.ts).
 *
 * The tridiagonalization reads and updates the upper triangle only, row by row (2/3 of the flops of a
 * full update, contiguous). The QL sweeps record their rotations and apply them as one sequence per
 * row of Z (LAPACK's dlasr: each entry loaded and stored once per sweep, not twice per rotation).
 */
import { householderVector, PANEL, triangularFactor } from './householder.js';
import { runSync, transposeRows, type Products } from './products.js';

const EPS = 2 ** -52;

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

/** The eigenvalues of the symmetric n × n matrix `a` (row-major; destroyed), descending: tridiagonalization and QL without vectors. */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  const { d, e } = tridiagonalize(a, n, null, null);
  tridiagonalQL(d, e, null, n);
  return d.sort().reverse();
}

export function* eigenProducts(a: Float64Array, n: number): Products<{ values: Float64Array; vectors: Float64Array }> {
  const count = Math.max(0, n - 2);
  // Row k of `refl`: the reflector H_k = I − τ_k·v·vᵀ that zeroes a[k+2.., k] (its 1 at k + 1).
  const refl = new Float64Array(count * n);
  const tau = new Float64Array(count);
  const { d, e } = tridiagonalize(a, n, refl, tau);
  // QL on T = Z·Λ·Zᵀ with the rotations on the columns of z (row-major), then zt = Zᵀ.
  const z = new Float64Array(n * n);
  for (let i = 0; i < n; i++) z[i * n + i] = 1;
  tridiagonalQL(d, e, z, n);
  const zt = transposeRows(z, n, n);
  // Eigenvectors as rows: (Z_hh·Z)ᵀ = zt·H_{n−3}·…·H_0, a block at a time from the last:
  // M·(H_k0 … H_k1−1)ᵀ = M − (M·Y)·Tᵀ·Yᵀ.
  for (let k1 = count; k1 > 0; k1 -= PANEL) {
    const k0 = Math.max(0, k1 - PANEL);
    const nb = k1 - k0;
    const yt = refl.subarray(k0 * n, k1 * n);
    const tm = yield* triangularFactor(yt, tau.subarray(k0, k1), nb, n);
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

/**
 * Householder tridiagonalization of the symmetric `a` (row-major, only its upper triangle read;
 * destroyed): the diagonal d and the superdiagonal e (e[i] = T[i][i+1]). Step k zeroes a[k][k+2..]
 * (= a[k+2.., k]) with H_k = I − τ_k·v·vᵀ, v[k+1] = 1, kept in row k of `refl` (and τ_k in `tau`)
 * when given. The trailing block is updated in its upper triangle: p = τ·A'·v (one pass over the
 * rows, each entry used for both of its symmetric places), w = p − (τ/2)(pᵀv)·v, A' −= v·wᵀ + w·vᵀ.
 */
function tridiagonalize(a: Float64Array, n: number, refl: Float64Array | null, tau: Float64Array | null): { d: Float64Array; e: Float64Array } {
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const lo = k + 1;
    const rk = k * n;
    const tk = householderVector(a, rk + lo, rk + n);
    if (tk === 0) continue;
    const beta = a[rk + lo];
    v[lo] = 1;
    for (let i = lo + 1; i < n; i++) v[i] = a[rk + i];
    if (refl !== null) refl.set(v.subarray(lo), k * n + lo);
    if (tau !== null) tau[k] = tk;
    p.fill(0, lo, n);
    for (let i = lo; i < n; i++) {
      const ri = i * n;
      const vi = v[i];
      let s = a[ri + i] * vi;
      for (let j = i + 1; j < n; j++) {
        const aij = a[ri + j];
        s += aij * v[j];
        p[j] += aij * vi;
      }
      p[i] += s;
    }
    let pv = 0;
    for (let i = lo; i < n; i++) {
      p[i] *= tk;
      pv += p[i] * v[i];
    }
    const half = (tk / 2) * pv;
    for (let i = lo; i < n; i++) p[i] -= half * v[i];
    for (let i = lo; i < n; i++) {
      const ri = i * n;
      const vi = v[i];
      const wi = p[i];
      for (let j = i; j < n; j++) a[ri + j] -= vi * p[j] + wi * v[j];
    }
    a[rk + lo] = beta;
    for (let i = lo + 1; i < n; i++) a[rk + i] = 0;
  }
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  for (let i = 0; i < n - 1; i++) e[i] = a[i * n + i + 1];
  return { d, e };
}

/**
 * Implicit QL on the tridiagonal (d, e) with e[i] = T[i][i+1]. With `z` (row-major n × n), each
 * sweep's rotations (on indices i, i + 1, from m − 1 down to l) are recorded and then applied to the
 * columns of z, row by row ({@link rotateColumns}).
 */
function tridiagonalQL(d: Float64Array, e: Float64Array, z: Float64Array | null, n: number): void {
  const cs = new Float64Array(n);
  const sn = new Float64Array(n);
  for (let l = 0; l < n; l++) {
    for (let iter = 0;; iter++) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= EPS * dd) break;
      }
      if (m === l) break;
      if (iter === 60) throw new Error(`symmetricEigen: no convergence for eigenvalue ${l} of ${n}`);
      // Wilkinson shift from the leading 2 × 2 block at l.
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let pShift = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = hypot(f, g);
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
        cs[i] = c;
        sn[i] = s;
      }
      // The rotations applied: i + 1 .. m − 1 after an underflow, l .. m − 1 otherwise.
      if (z !== null && i + 1 < m) rotateColumns(z, n, underflow ? i + 1 : l, m, cs, sn);
      if (underflow) continue;
      d[l] -= pShift;
      e[l] = g;
      e[m] = 0;
    }
  }
}

/**
 * Applies the rotations i = m − 1 down to lo (columns i and i + 1 of the row-major n × n `z`:
 * z_{i+1} ← s_i·z_i + c_i·z_{i+1}, z_i ← c_i·z_i − s_i·z_{i+1}) row by row, carrying the entry that
 * moves down the chain in a register; four rows at a time, so that four independent chains hide
 * the latency of each step.
 */
function rotateColumns(z: Float64Array, n: number, lo: number, m: number, cs: Float64Array, sn: Float64Array): void {
  let k = 0;
  for (; k + 3 < n; k += 4) {
    const ra = k * n;
    const rb = ra + n;
    const rc = rb + n;
    const rd = rc + n;
    let xa = z[ra + m];
    let xb = z[rb + m];
    let xc = z[rc + m];
    let xd = z[rd + m];
    for (let i = m - 1; i >= lo; i--) {
      const c = cs[i];
      const s = sn[i];
      const za = z[ra + i];
      const zb = z[rb + i];
      const zc = z[rc + i];
      const zd = z[rd + i];
      z[ra + i + 1] = s * za + c * xa;
      z[rb + i + 1] = s * zb + c * xb;
      z[rc + i + 1] = s * zc + c * xc;
      z[rd + i + 1] = s * zd + c * xd;
      xa = c * za - s * xa;
      xb = c * zb - s * xb;
      xc = c * zc - s * xc;
      xd = c * zd - s * xd;
    }
    z[ra + lo] = xa;
    z[rb + lo] = xb;
    z[rc + lo] = xc;
    z[rd + lo] = xd;
  }
  for (; k < n; k++) {
    const ra = k * n;
    let xa = z[ra + m];
    for (let i = m - 1; i >= lo; i--) {
      const za = z[ra + i];
      z[ra + i + 1] = sn[i] * za + cs[i] * xa;
      xa = cs[i] * za - sn[i] * xa;
    }
    z[ra + lo] = xa;
  }
}

/** √(x² + y²) without overflow or underflow (Math.hypot is several times slower in V8). */
function hypot(x: number, y: number): number {
  const ax = Math.abs(x);
  const ay = Math.abs(y);
  const big = Math.max(ax, ay);
  if (big === 0 || big === Infinity) return big;
  const small = Math.min(ax, ay) / big;
  return big * Math.sqrt(1 + small * small);
}
