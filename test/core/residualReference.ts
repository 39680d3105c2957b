/**
 * The float64 reference of the FedEx residual ΔR = Σ w_i B_i A_i − B̄Ā, straight from the definition
 * (one dense product per client): what the factored residual (src/core/residual.ts) and the deviation
 * norms (src/core/deviation.ts) are checked against. O(k·r·out·in) time and out × in memory, so only
 * for test sizes. Independent of src/: plain loops on the factors' arrays.
 */

/** A row-major matrix: B (out × r), A (r × in) or their averages. */
interface Factor {
  readonly shape: readonly [number, number];
  readonly data: ArrayLike<number>;
}

/** ΔR = Σ w_i B_i A_i − B̄Ā in float64 (out × in, row-major), for clients of one rank. */
export function denseResidual(clients: readonly { readonly a: Factor; readonly b: Factor }[], weights: ArrayLike<number>, abar: Factor, bbar: Factor): { shape: [number, number]; data: Float64Array } {
  const [r, inF] = abar.shape;
  const out = bbar.shape[0];
  const acc = new Float64Array(out * inF);
  const addProduct = (b: Factor, a: Factor, w: number): void => {
    for (let o = 0; o < out; o++) {
      for (let j = 0; j < r; j++) {
        const c = w * b.data[o * r + j];
        if (c === 0) continue;
        const row = j * inF;
        const dst = o * inF;
        for (let x = 0; x < inF; x++) acc[dst + x] += c * a.data[row + x];
      }
    }
  };
  clients.forEach((c, i) => addProduct(c.b, c.a, weights[i]));
  addProduct(bbar, abar, -1);
  return { shape: [out, inF], data: acc };
}
