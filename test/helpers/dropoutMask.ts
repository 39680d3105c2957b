// The keep mask of src/graph/nn/dropout.ts recomputed in TypeScript, in exact BigInt arithmetic and
// from the hash's definition (its constants restated here): what the graph's int64 and uint32 masks
// must equal bit for bit. Imports nothing from src/.

const P = 2147483647;
const ROW_SEED = 1103515245;
const COL_SEED = 1664525;
const COL_SALT = 40503;
const ROUNDS: readonly (readonly [number, number])[] = [[1013904223, 48271], [2147483587, 69621]];
const FINAL = 1442695041;

/**
 * The keep mask (1 = kept) that `dropout` uses for a tensor of `rows × cols` elements (cols = last
 * axis): row and column indices hashed apart (two rounds of h ← ((h² + c) mod P)·a mod P), then
 * h = ((r + c)² + FINAL) mod P per element, kept when h ≥ ⌊rate·P⌋.
 */
export function dropoutKeepMask(seed: bigint, salt: number, rows: number, cols: number, rate: number): Uint8Array {
  const p = BigInt(P);
  const m = (v: bigint): bigint => ((v % p) + p) % p;
  const mix = (h: bigint): bigint => {
    let v = h;
    for (const [c, a] of ROUNDS) v = m(m(v * v + BigInt(c)) * BigInt(a));
    return v;
  };
  const s = m(seed);
  const rowOffset = m(s * BigInt(ROW_SEED) + BigInt(salt));
  const colOffset = m(s * BigInt(COL_SEED) + BigInt((salt * COL_SALT) % P + 1));
  const colHash = Array.from({ length: cols }, (_, c) => mix(m(BigInt(c) + colOffset)));
  const threshold = BigInt(Math.floor(rate * P));
  const out = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const rowHash = mix(m(BigInt(r) + rowOffset));
    for (let c = 0; c < cols; c++) {
      const h0 = m(rowHash + colHash[c]);
      out[r * cols + c] = m(h0 * h0 + BigInt(FINAL)) >= threshold ? 1 : 0;
    }
  }
  return out;
}
