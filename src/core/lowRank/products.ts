/**
 * The matrix products of the re-factorization (core/lowRank.ts): the algorithm is written as
 * generators that yield {@link GemmRequest}s, computed here in TypeScript ({@link runSync}) or by a
 * {@link GemmBackend} (the onnxruntime one in src/runtime/kernels/gemm64.ts).
 */

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

export type Products<T> = Generator<GemmRequest, T, void>;

/** Runs a product generator with every product in TypeScript. */
export function runSync<T>(gen: Products<T>): T {
  let step = gen.next();
  while (step.done !== true) {
    typeScriptGemm(step.value);
    step = gen.next();
  }
  return step.value;
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
export function transposeRows(x: Float64Array, rows: number, cols: number): Float64Array {
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
