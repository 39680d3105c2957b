/**
 * Heterogeneous client ranks (docs/math.md §1.4). The global adapter of a module has rank r_g (its
 * spec's rank); client i trains at r_i ≤ r_g with the same scaling s = alpha / r_g (alpha / √r_g with
 * rsLoRA), so every product s·B·A in a round is on one scale.
 *
 * - A client starts a round from the global adapter truncated to its rank: the first r_i rows of A_g
 *   and columns of B_g (`truncateFactors`). What that drops, L_i = B_g A_g − B_g[:, :r_i] A_g[:r_i, :],
 *   is folded into the client's own base, W0_i = W0 + s·L_i (`truncationLoss`), so its model equals
 *   the global model when the round starts.
 * - The coordinator zero-pads each upload to r_g (`padFactors`, as HetLoRA does) to average it, and
 *   folds Σ w_i L_i = B_g·diag(c)·A_g with c_j = Σ_{i: r_i ≤ j} w_i (`weightedTruncation`) into the
 *   global base with the residual, so W0' + s·B̄Ā = Σ w_i (W0_i + s·B_i A_i) exactly.
 */
import { validateFactors, type LoraFactors, type LoraModuleSpec } from './lora.js';
import type { Matrix } from './tensor.js';
import { clientLabel } from './lora.js';

/** The rank of a client's factors for a module (rows of A); checked against the spec's rank by `validateClientFactors`. */
export function factorsRank(f: LoraFactors): number {
  return f.a.shape[0];
}

/** The spec of a client that trains `spec` at rank `rank` (same scaling: alpha is scaled with the rank). */
export function specAtRank(spec: LoraModuleSpec, rank: number): LoraModuleSpec {
  if (rank === spec.rank) return spec;
  const alpha = spec.useRslora ? spec.alpha * Math.sqrt(rank / spec.rank) : spec.alpha * (rank / spec.rank);
  return { ...spec, rank, alpha };
}

/**
 * Checks one client's factors when its rank may be below the spec's: A is r_i × in and B out × r_i
 * with 1 ≤ r_i ≤ r_g, float32 and finite. With `heterogeneous` false the rank must equal r_g, and the
 * error says which strategies accept a lower one.
 */
export function validateClientFactors(spec: LoraModuleSpec, f: LoraFactors, client: number, clientId: string | undefined, heterogeneous: boolean, strategy: string): void {
  const r = f.a.shape.length === 2 ? f.a.shape[0] : NaN;
  if (r !== spec.rank && Number.isInteger(r) && r >= 1) {
    const where = `${clientLabel(client, clientId)}: module '${spec.name}'`;
    if (!heterogeneous) throw new RangeError(`${strategy}: ${where}: lora_A has rank ${r}, the global rank is ${spec.rank}; lower client ranks need an exact method that folds into the base (fedex or flora)`);
    if (r > spec.rank) throw new RangeError(`${strategy}: ${where}: lora_A has rank ${r}, above the global rank ${spec.rank}`);
    validateFactors(specAtRank(spec, r), f, client, clientId);
    return;
  }
  validateFactors(spec, f, client, clientId);
}

/** A (r_g × in) and B (out × r_g) with the client's factors in the first r_i rows / columns, zeros after; the factors themselves when r_i = r_g. */
export function padFactors(f: LoraFactors, rank: number): LoraFactors {
  const [r, inF] = f.a.shape;
  if (r === rank) return f;
  if (r > rank) throw new RangeError(`padFactors: rank ${r} is above ${rank}`);
  const out = f.b.shape[0];
  const a = new Float32Array(rank * inF);
  a.set(f.a.data);
  const b = new Float32Array(out * rank);
  for (let o = 0; o < out; o++) b.set(f.b.data.subarray(o * r, (o + 1) * r), o * rank);
  return { a: { shape: [rank, inF], data: a }, b: { shape: [out, rank], data: b } };
}

/** The first `rank` rows of A and columns of B (copies); the factors themselves when the rank is already `rank`. */
export function truncateFactors(f: LoraFactors, rank: number): LoraFactors {
  const [r, inF] = f.a.shape;
  if (rank === r) return f;
  if (!Number.isInteger(rank) || rank < 1 || rank > r) throw new RangeError(`truncateFactors: rank must be an integer in 1..${r}, got ${rank}`);
  const out = f.b.shape[0];
  const b = new Float32Array(out * rank);
  for (let o = 0; o < out; o++) b.set(f.b.data.subarray(o * r, o * r + rank), o * rank);
  return { a: { shape: [rank, inF], data: f.a.data.slice(0, rank * inF) }, b: { shape: [out, rank], data: b } };
}

/**
 * What truncating `global` to `rank` drops, factored: L = P·Q with P = B_g[:, rank:] (out × (r_g − rank))
 * and Q = A_g[rank:, :]; null when nothing is dropped (rank = r_g, or those columns of B_g are all zero).
 */
export function truncationLoss(global: LoraFactors, rank: number): { p: Matrix<Float32Array>; q: Matrix<Float32Array> } | null {
  const [rg, inF] = global.a.shape;
  if (rank >= rg) return null;
  const out = global.b.shape[0];
  const k = rg - rank;
  const p = new Float32Array(out * k);
  let any = false;
  for (let o = 0; o < out; o++) {
    for (let j = 0; j < k; j++) {
      const v = global.b.data[o * rg + rank + j];
      p[o * k + j] = v;
      if (v !== 0) any = true;
    }
  }
  if (!any) return null;
  return { p: { shape: [out, k], data: p }, q: { shape: [k, inF], data: global.a.data.slice(rank * inF) } };
}

/**
 * Σ w_i L_i for clients of ranks `ranks` and normalised `weights` that started from `global`:
 * B_g·diag(c)·A_g with c_j = Σ_{i: r_i ≤ j} w_i, factored over the components j with c_j ≠ 0 and a
 * non-zero column of B_g: P (out × m) holds c_j·B_g[:, j] (rounded to float32 once), Q (m × in) the
 * rows A_g[j, :]. Null when nothing was truncated.
 */
export function weightedTruncation(global: LoraFactors | null, ranks: readonly number[], weights: ArrayLike<number>): { p: Matrix<Float32Array>; q: Matrix<Float32Array> } | null {
  if (global === null) return null;
  const [rg, inF] = global.a.shape;
  const out = global.b.shape[0];
  const c = new Float64Array(rg);
  ranks.forEach((r, i) => {
    for (let j = r; j < rg; j++) c[j] += weights[i];
  });
  const kept: number[] = [];
  for (let j = 0; j < rg; j++) {
    if (c[j] === 0) continue;
    let nonZero = false;
    for (let o = 0; o < out && !nonZero; o++) nonZero = global.b.data[o * rg + j] !== 0;
    if (nonZero) kept.push(j);
  }
  if (kept.length === 0) return null;
  const m = kept.length;
  const p = new Float32Array(out * m);
  const q = new Float32Array(m * inF);
  kept.forEach((j, t) => {
    for (let o = 0; o < out; o++) p[o * m + t] = c[j] * global.b.data[o * rg + j];
    q.set(global.a.data.subarray(j * inF, (j + 1) * inF), t * inF);
  });
  return { p: { shape: [out, m], data: p }, q: { shape: [m, inF], data: q } };
}

/**
 * Concatenates factored terms P_t·Q_t into one P·Q (P side by side, Q stacked); each term's P is
 * multiplied by its coefficient (rounded to float32 once). Null when there are no terms.
 */
export function concatFactored(terms: readonly { p: Matrix<Float32Array>; q: Matrix<Float32Array>; coefficient?: number }[]): { p: Matrix<Float32Array>; q: Matrix<Float32Array> } | null {
  if (terms.length === 0) return null;
  const out = terms[0].p.shape[0];
  const inF = terms[0].q.shape[1];
  const inner = terms.reduce((n, t) => n + t.p.shape[1], 0);
  const p = new Float32Array(out * inner);
  const q = new Float32Array(inner * inF);
  let col = 0;
  for (const t of terms) {
    const k = t.p.shape[1];
    const c = t.coefficient ?? 1;
    for (let o = 0; o < out; o++) for (let j = 0; j < k; j++) p[o * inner + col + j] = c * t.p.data[o * k + j];
    q.set(t.q.data, col * inF);
    col += k;
  }
  return { p: { shape: [out, inner], data: p }, q: { shape: [inner, inF], data: q } };
}

/**
 * FedEx's stacked residual ΔR = Σ w_i B_i A_i − B̄Ā for clients of different ranks, with Ā the
 * average of the zero-padded A_i: P = [w_1 B_1 | …] (out × Σ r_i) and Q = [A_1 − Ā[:r_1, :]; …]. The
 * padded columns of B_i are zero, so each block needs only its client's r_i components. Clients of
 * weight 0 are left out; entries are rounded to float32 once.
 */
export function residualAtRanks(clients: readonly LoraFactors[], weights: ArrayLike<number>, abar: Matrix): { p: Matrix<Float32Array>; q: Matrix<Float32Array>; contributors: number } {
  const inF = abar.shape[1];
  const out = clients[0].b.shape[0];
  const active = clients.map((_, i) => i).filter((i) => weights[i] > 0);
  const inner = active.reduce((n, i) => n + factorsRank(clients[i]), 0);
  const p = new Float32Array(out * inner);
  const q = new Float32Array(inner * inF);
  let col = 0;
  for (const i of active) {
    const { a, b } = clients[i];
    const r = a.shape[0];
    const w = weights[i];
    for (let o = 0; o < out; o++) for (let j = 0; j < r; j++) p[o * inner + col + j] = w * b.data[o * r + j];
    for (let x = 0; x < r * inF; x++) q[col * inF + x] = a.data[x] - abar.data[x];
    col += r;
  }
  return { p: { shape: [out, inner], data: p }, q: { shape: [inner, inF], data: q }, contributors: active.length };
}
