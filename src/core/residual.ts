/**
 * The FedEx residual ΔR = Σ w_i B_i A_i − B̄Ā, kept in factored form ΔR = P·Q so that it is never
 * materialised per client (docs/math.md §1):
 *
 * - `stacked` (the paper's form): P = [w_1 B_1 | … | w_k B_k] (out × k·r), Q = [A_1 − Ā; …; A_k − Ā]
 *   (k·r × in).
 * - `compact`: since Σ w_i (A_i − Ā) = 0, ΔR = Σ_{i≠j} w_i (B_i − B_j)(A_i − Ā) for any client j; this
 *   drops one block (inner size (k−1)·r, which is also the rank bound), saving 1/k of the bytes and
 *   of the flops of the fused update. Both forms equal ΔR up to float32 round-off of Ā and B̄.
 *
 * Clients with weight 0 contribute nothing and are left out of both forms. Entries are computed in
 * float64 and rounded to float32 once.
 */
import { shapeString } from './tensor.js';
import type { Matrix } from './tensor.js';
import type { Layout, LoraFactors } from './lora.js';
import type { FactoredChange } from './baseChange.js';

export type ResidualForm = 'stacked' | 'compact';

/** A base-weight update in factored form: W0 += scale·P·Q (`linear`) or W0 += scale·(P·Q)ᵀ (`conv1d`); see baseChange.ts. */
export type FactoredUpdate = FactoredChange & { readonly layout: Layout };

/** The factors of ΔR and how many clients they hold. */
export interface FactoredResidual {
  readonly p: Matrix<Float32Array>;
  readonly q: Matrix<Float32Array>;
  /** Clients with a non-zero weight (the k of the rank bound). */
  readonly contributors: number;
  readonly form: ResidualForm;
}

/** Inner dimension of the factored residual for k contributing clients of rank r. */
export function residualInnerDim(k: number, r: number, form: ResidualForm = 'stacked'): number {
  if (k <= 0) return 0;
  return form === 'stacked' ? k * r : (k - 1) * r;
}

/** Upper bound of rank(ΔR): min((k−1)·r, out, in); 0 for a single client. */
export function residualRankBound(k: number, r: number, outFeatures: number, inFeatures: number): number {
  return Math.max(0, Math.min((k - 1) * r, outFeatures, inFeatures));
}

/** Bytes of a factored (P, Q) pair with the given inner dimension. */
export function factoredBytes(outFeatures: number, inFeatures: number, inner: number, bytesPerValue = 4): number {
  return inner * (outFeatures + inFeatures) * bytesPerValue;
}

/** Bytes of the dense out × in residual. */
export function denseBytes(outFeatures: number, inFeatures: number, bytesPerValue = 4): number {
  return outFeatures * inFeatures * bytesPerValue;
}

/** True when a factored (P, Q) of inner size `inner` is smaller than the dense out × in residual. */
export function factoredIsSmaller(outFeatures: number, inFeatures: number, inner: number): boolean {
  return factoredBytes(outFeatures, inFeatures, inner) < denseBytes(outFeatures, inFeatures);
}

/** True when sending (P, Q) for k clients of rank r is smaller than sending the dense residual. */
export function preferFactored(outFeatures: number, inFeatures: number, k: number, r: number, form: ResidualForm = 'stacked'): boolean {
  return factoredIsSmaller(outFeatures, inFeatures, residualInnerDim(k, r, form));
}

function checkClients(clients: readonly LoraFactors[], weights: ArrayLike<number>, abar: Matrix): void {
  if (clients.length === 0) throw new RangeError('factorResidual: no clients');
  if (clients.length !== weights.length) throw new RangeError(`factorResidual: ${clients.length} clients but ${weights.length} weights`);
  const [r, inF] = abar.shape;
  const out = clients[0].b.shape[0];
  clients.forEach((c, i) => {
    if (c.a.shape[0] !== r || c.a.shape[1] !== inF) throw new RangeError(`factorResidual: client ${i} lora_A has shape ${shapeString(c.a.shape)}, Ā has ${shapeString(abar.shape)}`);
    if (c.b.shape[0] !== out || c.b.shape[1] !== r) throw new RangeError(`factorResidual: client ${i} lora_B has shape ${shapeString(c.b.shape)}, expected [${out}, ${r}]`);
  });
}

/** Writes `w·(B − Bref)` (or `w·B` without a reference) into columns [col0, col0 + r) of P. */
function writeScaledB(p: Float32Array, inner: number, col0: number, b: Matrix, w: number, bref: Matrix | null): void {
  const [out, r] = b.shape;
  for (let o = 0; o < out; o++) {
    const src = o * r;
    const dst = o * inner + col0;
    for (let j = 0; j < r; j++) p[dst + j] = w * (bref === null ? b.data[src + j] : b.data[src + j] - bref.data[src + j]);
  }
}

/** Writes A − Ā into rows [row0, row0 + r) of Q. */
function writeCenteredA(q: Float32Array, row0: number, a: Matrix, abar: Matrix): void {
  const n = a.data.length;
  const off = row0 * a.shape[1];
  for (let j = 0; j < n; j++) q[off + j] = a.data[j] - abar.data[j];
}

/**
 * Factors ΔR = Σ w_i B_i A_i − B̄Ā as P·Q, given the clients' factors, their normalised weights and
 * the (float32) Ā that will be sent. See the module comment for the two forms.
 */
export function factorResidual(
  clients: readonly LoraFactors[],
  weights: ArrayLike<number>,
  abar: Matrix,
  form: ResidualForm = 'stacked',
): FactoredResidual {
  checkClients(clients, weights, abar);
  const [r, inF] = abar.shape;
  const out = clients[0].b.shape[0];
  const active: number[] = [];
  for (let i = 0; i < clients.length; i++) if (weights[i] > 0) active.push(i);
  let ref = -1;
  if (form === 'compact') {
    // Any contributor works as the reference; the heaviest keeps the others' (B_i − B_ref) smallest on average.
    for (const i of active) if (ref < 0 || weights[i] > weights[ref]) ref = i;
  }
  const blocks = form === 'compact' ? active.filter((i) => i !== ref) : active;
  const inner = blocks.length * r;
  const p = new Float32Array(out * inner);
  const q = new Float32Array(inner * inF);
  blocks.forEach((i, slot) => {
    writeScaledB(p, inner, slot * r, clients[i].b, weights[i], ref >= 0 ? clients[ref].b : null);
    writeCenteredA(q, slot * r, clients[i].a, abar);
  });
  return { p: { shape: [out, inner], data: p }, q: { shape: [inner, inF], data: q }, contributors: active.length, form };
}

/** True when every entry of Q (or P) is exactly zero, i.e. the residual vanishes (k = 1, identical A). */
export function isZeroResidual(res: { readonly p: Matrix; readonly q: Matrix }): boolean {
  if (res.p.data.length === 0 || res.q.data.length === 0) return true;
  return res.q.data.every((v) => v === 0) || res.p.data.every((v) => v === 0);
}
