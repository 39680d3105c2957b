// The two loops that dominate the float64 reference at real widths (10⁸ weights per layer): y = x·Wᵀ
// and dx += dy·W, each streaming W once and sharing every load of it between four rows.

/** Weights as the reference reads them: float64, or float32 holding exact bf16 values. */
export type WeightData = Float64Array | Float32Array;

/**
 * `x·Wᵀ` for x `[n, in]`, W `[out, in]`: W is streamed once, four rows of x at a time share each
 * of its loads (the reference runs at real widths, 10⁸ weights per layer).
 */
export function matVecRows(x: Float64Array, n: number, inF: number, w: WeightData, outF: number): Float64Array {
  const y = new Float64Array(n * outF);
  for (let o = 0; o < outF; o++) {
    const base = o * inF;
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const [x0, x1, x2, x3] = [i * inF, (i + 1) * inF, (i + 2) * inF, (i + 3) * inF];
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let k = 0; k < inF; k++) {
        const wk = w[base + k];
        a0 += x[x0 + k] * wk;
        a1 += x[x1 + k] * wk;
        a2 += x[x2 + k] * wk;
        a3 += x[x3 + k] * wk;
      }
      y[i * outF + o] = a0;
      y[(i + 1) * outF + o] = a1;
      y[(i + 2) * outF + o] = a2;
      y[(i + 3) * outF + o] = a3;
    }
    for (; i < n; i++) {
      let acc = 0;
      const xo = i * inF;
      for (let k = 0; k < inF; k++) acc += x[xo + k] * w[base + k];
      y[i * outF + o] = acc;
    }
  }
  return y;
}

/** `dx += dy·W` for dy `[n, out]`, W `[out, in]`: W streamed once, four rows of dx updated per load. */
export function addRowsTimesW(dy: Float64Array, n: number, outF: number, w: WeightData, inF: number, dx: Float64Array): void {
  for (let o = 0; o < outF; o++) {
    const base = o * inF;
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const [g0, g1, g2, g3] = [dy[i * outF + o], dy[(i + 1) * outF + o], dy[(i + 2) * outF + o], dy[(i + 3) * outF + o]];
      const [x0, x1, x2, x3] = [i * inF, (i + 1) * inF, (i + 2) * inF, (i + 3) * inF];
      for (let k = 0; k < inF; k++) {
        const wk = w[base + k];
        dx[x0 + k] += g0 * wk;
        dx[x1 + k] += g1 * wk;
        dx[x2 + k] += g2 * wk;
        dx[x3 + k] += g3 * wk;
      }
    }
    for (; i < n; i++) {
      const g = dy[i * outF + o];
      const xo = i * inF;
      for (let k = 0; k < inF; k++) dx[xo + k] += g * w[base + k];
    }
  }
}
