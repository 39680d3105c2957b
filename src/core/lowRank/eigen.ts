/**
 * Symmetric eigendecomposition (Householder tridiagonalization, implicit QL with Wilkinson shifts,
 * the reflectors applied back in compact-WY blocks as products), for the m × m core of the
 * re-factorization (core/lowRank.ts).
 */
import { PANEL, triangularFactor } from './householder.js';
import { runSync, type Products } from './products.js';

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

export function* eigenProducts(a: Float64Array, n: number): Products<{ values: Float64Array; vectors: Float64Array }> {
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

/** Implicit QL on the tridiagonal (d, e) with e[i] = T[i][i+1]; rotations applied to the rows of `zt`. */
function tridiagonalQL(d: Float64Array, e: Float64Array, zt: Float64Array, n: number): void {
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
