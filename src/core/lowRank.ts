/**
 * One thin factorization B·A of a sum of low-rank products (docs/math.md §1.1, "Export"):
 *
 *   ΔW = Σ_j s_j·P_j·Q_j = P·Q,   P = [s_1 P_1 | … | s_J P_J] (out × m),   Q = [Q_1; …; Q_J] (m × in)
 *
 * A dense term s·D (out × in) joins the stack as (s·D, I) or (I, s·D), whichever side is smaller.
 * Everything is float64:
 *
 * 1. thin Householder QR on both sides: P = Q_p·R_p, Qᵀ = Q_q·R_q (R upper triangular, at most m × m)
 *    (or, where their error bounds allow, their Gram matrices instead: below);
 * 2. the small core C = R_p·R_qᵀ and its right singular vectors V, from the symmetric
 *    eigendecomposition of CᵀC (Householder tridiagonalization, then implicit QL);
 * 3. B = P·(R_qᵀ·V_k) and A = (Q_q·V_k)ᵀ, columns of B and rows of A rescaled by √σ_i, σ_i = ‖C·v_i‖.
 *    Q_q·V_k is (V_kᵀ·R_q⁻ᵀ)ᵀ·Q's rows, one product with a copy of Q (2·n·m·k flops), when R_q is
 *    square and ‖R_q‖_F·‖R_q⁻¹‖_F ≤ 2¹² ({@link COND_LIMIT}); else Q_q's reflectors are applied
 *    (4·n·m·k flops, in blocks).
 *
 * So B·A = P·R_qᵀ·V_k·V_kᵀ·Q_qᵀ, which is P·Q = ΔW when V_k holds every direction with σ_i > 0,
 * whatever the accuracy of the individual singular vectors (V is orthogonal): exactness needs no
 * division by a singular value, and nearly dependent columns in P or Q are harmless (through R_q⁻¹
 * the error is κ(R_q)·2⁻⁵²·‖P‖‖Q‖ instead, hence the bound on κ). Truncating to k directions loses
 * exactly ‖C·V_tail‖_F (Q_p and Q_q are orthonormal), the error reported. The side whose QR is
 * applied to V_k is the smaller of out and in; the other is one product (2·n·m·k). Cost
 * O((out + in)·m² + m³); the dense out × in matrix is never formed.
 *
 * Neither QR is needed when the stack is well conditioned enough (the usual case: a FedEx stack
 * after compaction is, measured in docs/benchmarks.md "Export"), and neither is then taken:
 *
 * - Q's side: R with RᵀR = Q·Qᵀ, the Cholesky factor of Q's Gram matrix ({@link choleskySide}), in
 *   place of R_q; A = (diag(√σ)·V_kᵀ·R⁻ᵀ)·Q as above. B·A = P·Rᵀ·V·Vᵀ·R⁻ᵀ·Q is still P·Q (to
 *   κ(R)·2⁻⁵²) for any invertible R; the σ found are those of P·Rᵀ, within a relative 2⁻¹⁷ of P·Q's
 *   when the bound on ‖R⁻ᵀ·Q·Qᵀ·R⁻¹ − I‖ allows it, else Householder QR as above.
 * - P's side: V and σ² are the eigenvectors and eigenvalues of M = R_q·(PᵀP)·R_qᵀ = CᵀC
 *   ({@link gramCore}), from P's Gram matrix; the error this adds to each σ² is bounded by
 *   β = (out + 4m)·2⁻⁵²·‖P‖_F²·‖R_q‖_F² (it grows with the cancellation in P·Q, as ‖P‖²·‖Q‖²), so the
 *   route is taken only when β ≤ 2⁻¹⁶·σ_min² (every σ within a relative 2⁻¹⁷) and every direction
 *   clears the rank floor by it (all kept, so B·A = P·Q exactly, as with the QR). Else the QR of P.
 *
 * Either way B·A = P·Q and the rank are those of the QR route; only the σ reported (and a truncation
 * error computed from them) may differ, within those bounds. Both Grams leave P and Q untouched, so
 * the stack needs no copies (B = P·X and A = Z·Q read them as they are).
 *
 * Before that, each factored term loses its near-dependent rows of Q (lowRank/compact.ts): a FedEx
 * residual stacked as [A_i − Ā] has r combinations that are zero up to the float32 rounding of Ā, so
 * 10 rounds × 3 clients at r = 16 factor at m′ = 336 instead of m = 496. The rewrite is exact,
 * ΔW = G + F with G the compacted stack and F = P_F·Q_F (inner size m − m′) what those rows carried;
 * when F is rounding-sized (‖F‖_F ≤ 2⁻²⁰·‖G‖_F) G and F are factored apart and their directions put
 * side by side (F's above σ_1·2⁻²⁴; when its Grams show none can reach that, F's σ come from them
 * and F is not factored: {@link omittedSpectrum}), else the whole stack is factored as above. Then B·A = G_k + F_k
 * exactly, the error reported is √(Σ dropped σ²) (exact when only F's directions are dropped; within
 * √2·‖F‖_F when G's are truncated too), and the σ and ‖ΔW‖ reported are ΔW's to within ‖F‖_F.
 *
 * The compaction keeps the stack in place (kept columns moved to the front, F's factors to its back),
 * so that the call holds the float64 stack (out + in)·m, B and A, and little more.
 *
 * The QR is blocked (blocks of 128 columns, compact WY: H_1…H_b = I − Y·T·Yᵀ, each block's panel
 * factored recursively down to leaves of 16 columns: lowRank/householder.ts), so nearly all of the
 * O((out + in)·m²) work is matrix products. The algorithm is written once, as a generator
 * that yields its products ({@link GemmRequest}); {@link refactorLowRank} computes them in TypeScript
 * (synchronous, for the strategies), {@link refactorLowRankWith} on a {@link GemmBackend} (the
 * onnxruntime one in src/runtime/kernels/gemm64.ts, about 20× faster per product).
 */
import type { Matrix } from './tensor.js';
import { eigenProducts, symmetricEigenvalues } from './lowRank/eigen.js';
import { compactStack, type TermColumns } from './lowRank/compact.js';
import { applyQ, blockedQR, type HouseholderQR } from './lowRank/householder.js';
import { runSync, transposeRows, type GemmBackend, type Products } from './lowRank/products.js';

export { symmetricEigen, symmetricEigenvalues } from './lowRank/eigen.js';
export { householderQR, applyHouseholderQ, type HouseholderQR } from './lowRank/householder.js';
export type { GemmBackend, GemmRequest } from './lowRank/products.js';
export { typeScriptGemm } from './lowRank/products.js';

/** How each side of a stack was reduced ({@link Refactored.coreRoute}). */
export interface CoreRoute {
  readonly p: 'gram' | 'qr';
  readonly q: 'gram' | 'qr';
}

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
  /** Numerical rank of ΔW: directions with σ_i > σ_1 · 2⁻²⁶ (the resolution of σ_i = ‖C·v_i‖ from CᵀC; below float32's 2⁻²⁴); of a rounding part F factored apart, those above σ_1 · 2⁻²⁴. */
  readonly exactRank: number;
  /** Inner size m of the stacked factors. */
  readonly innerDim: number;
  /** Inner size of the largest stack factored: m, or m less the near-dependent columns taken out of the terms (lowRank/compact.ts). */
  readonly coreDim: number;
  /** ‖ΔW‖_F (to within ‖F‖_F when a rounding part F was factored apart: module docs). */
  readonly norm: number;
  /** ‖ΔW − B·A‖_F in float64: the directions below the resolution at full rank (about 1e-9 to 1e-7 of ‖ΔW‖ when there are any), more when truncated. */
  readonly truncationError: number;
  /** truncationError / norm (0 for ΔW = 0). */
  readonly relativeError: number;
  /** σ_1 ≥ σ_2 ≥ … of ΔW (as many as the core has). */
  readonly singularValues: Float64Array;
  /** How the largest stack's sides were reduced: through their Gram matrices (PᵀP; Q·Qᵀ and its Cholesky factor) where the error bounds allow, else Householder QR (module docs). */
  readonly coreRoute: CoreRoute;
}

/**
 * Singular values below σ_1·2⁻²⁶ are not resolved: they come from the eigenvalues of CᵀC, whose
 * absolute accuracy is about 2⁻⁵²·σ_1², so a direction of ΔW that is zero reads as up to ~3e-9·σ_1
 * (measured, docs/benchmarks.md). Such directions are dropped and their share reported; they are also
 * below the float32 rounding (2⁻²⁴) of the factors that get written.
 */
const RESOLUTION = 2 ** -26;
/**
 * The part F of ΔW carried by near-dependent columns of the terms (lowRank/compact.ts: for FedEx, the
 * float32 rounding of Ā in every stacked residual, ~1e-7·‖ΔW‖_F) is factored apart from the rest G
 * when ‖F‖_F ≤ 2⁻²⁰·‖G‖_F: then the singular values of G and F listed side by side are those of ΔW
 * to within ‖F‖₂ (Weyl), far below the float32 rounding of the factors that get written.
 */
const SPLIT_LIMIT = 2 ** -20;
/**
 * F's directions are kept above σ_1·2⁻²⁴ (float32's unit round-off of ΔW), not σ_1·2⁻²⁶: factored
 * apart from G, F's parts along G's singular spaces are not absorbed by rotating them (as one
 * factorization of G + F does, at second order), so more of F's directions clear 2⁻²⁶ than ΔW has
 * there; those below float32's resolution are dropped and counted in truncationError.
 */
const F_RESOLUTION = 2 ** -24;
/**
 * A = diag(√σ)·V_kᵀ·Q_qᵀ is computed as (diag(√σ)·V_kᵀ·R_q⁻ᵀ)·Q (one product with the kept Q, half
 * the flops of applying Q_q's reflectors and in one efficient product) when R_q is this well
 * conditioned (‖R_q‖_F·‖R_q⁻¹‖_F): B·A then differs from P·Q by about κ·2⁻⁵²·‖P‖·‖Q‖ (the computed
 * inverse's residual), at most ~2⁻⁴⁰ relative. Otherwise through the reflectors, whose error does not
 * depend on κ.
 */
const COND_LIMIT = 2 ** 12;
/**
 * Each side is reduced through its Gram matrix ({@link gramCore}, {@link choleskySide}) when the bound
 * on the relative error this adds to every σ² stays ≤ GRAM_LIMIT (every σ within a relative 2⁻¹⁷,
 * ≈ 8·10⁻⁶, of what the QR route computes; 2⁻¹⁶ with both sides), and, for P's, every direction
 * clears the rank floor by it; else by its QR. B·A = P·Q stays exact either way (V orthogonal, all
 * directions kept); only the reported σ (and the error of a truncation, which is computed from them)
 * are less accurate, within that bound. The bounds are worst cases: on the benchmark's FedEx stacks
 * the σ of the two routes agree to 1.1·10⁻¹² (docs/benchmarks.md "Export").
 */
const GRAM_LIMIT = 2 ** -16;
const GRAM_ROUTE: CoreRoute = { p: 'gram', q: 'gram' };

/** The stacked factors of a sum of terms: P column-major (out × m), Qᵀ column-major (in × m). */
function stack(terms: readonly UpdateTerm[], out: number, inF: number): { p: Float64Array; qt: Float64Array; m: number; columns: TermColumns[] } {
  const inner = (t: UpdateTerm): number => (t.kind === 'factored' ? t.p.shape[1] : Math.min(out, inF));
  const m = terms.reduce((n, t) => n + inner(t), 0);
  const p = new Float64Array(out * m);
  const qt = new Float64Array(inF * m);
  let col = 0;
  const columns: TermColumns[] = [];
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
      columns.push({ start: col, width: k });
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
        columns.push({ start: col, width: inF, search: false });
        col += inF;
      } else {
        for (let c = 0; c < out; c++) {
          p[(col + c) * out + c] = 1;
          for (let i = 0; i < inF; i++) qt[(col + c) * inF + i] = t.scale * dd[c * inF + i];
        }
        columns.push({ start: col, width: out, search: false });
        col += out;
      }
    }
  }
  return { p, qt, m, columns };
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

/**
 * The exact factorization (every direction above the rank floor), its products yielded. With
 * `compact`, near-dependent columns are first taken out of each term (lowRank/compact.ts): ΔW = G + F
 * with G of inner size m' < m and F = P_F·Q_F the part they carry. When F is rounding-sized
 * (‖F‖_F ≤ {@link SPLIT_LIMIT}·‖G‖_F) the two are factored apart and their directions above the floor
 * set by G put side by side; otherwise the stack is factored whole.
 */
function* refactorProducts(terms: readonly UpdateTerm[], out: number, inF: number, compact = true, flipped = false): Products<Refactored> {
  if (inF > out) {
    // Work on ΔWᵀ = Σ s·Qᵀ·Pᵀ so that the side A comes from (the costlier one) is the smaller dimension.
    const t = yield* refactorProducts(terms.map(transposeTerm), inF, out, compact, true);
    return { ...t, b: transposed(t.a), a: transposed(t.b) };
  }
  const stacked = stack(terms, out, inF);
  const { p, qt, m } = stacked;
  if (compact) {
    // The terms' Q side: FedEx's near-dependent rows (Qᵀ's columns here, P's when transposed).
    const c = yield* compactStack(p, qt, out, inF, stacked.columns, flipped ? 'p' : 'q');
    if (c.d > 0) {
      const g = yield* factorStack(p, qt, c.m, out, inF, (norm2) => c.omittedNormBound ** 2 <= SPLIT_LIMIT ** 2 * norm2);
      if (g !== null) {
        // F: its own stack (P_F column-major is P_Fᵀ row-major), its directions above float32's
        // resolution of ΔW ({@link F_RESOLUTION}).
        const floor = (g.sigma[0] ?? 0) * F_RESOLUTION;
        const f = (yield* omittedSpectrum(c.omittedP, c.omittedQt, c.d, out, inF, floor)) ?? (yield* factorStack(c.omittedP, c.omittedQt, c.d, out, inF, () => true, floor));
        return merged(g, f!, out, inF, m, Math.max(c.m, c.d));
      }
      // F is not rounding-sized: factor the terms as they are.
      const again = stack(terms, out, inF);
      return refactored(yield* factorStack(again.p, again.qt, m, out, inF, () => true), out, inF, m, m);
    }
  }
  return refactored(yield* factorStack(p, qt, m, out, inF, () => true), out, inF, m, m);
}

/** B·A of a stack: B (out × rank) and A (rank × in) row-major, balanced; σ of every direction of the core, descending. */
interface StackFactors {
  readonly b: Float64Array;
  readonly a: Float64Array;
  readonly rank: number;
  readonly sigma: Float64Array;
  readonly route: CoreRoute;
}

/**
 * Factors the stack P (`p`, out × m) · Q (`qt` = Qᵀ, in × m), both column-major; `qt` is
 * overwritten, `p` too when P's side takes the QR: the directions with σ above `floor` (default
 * σ_1·2⁻²⁶). Qᵀ = Q_q·R_q by Householder QR; the core's right singular vectors V and σ from
 * {@link gramCore} when its check passes, else from C = R_p·R_qᵀ after a QR of P. `proceed` sees
 * ‖P·Q‖_F² once the core is formed; when it says no, the factorization stops there and returns null.
 */
function* factorStack(p: Float64Array, qt: Float64Array, m: number, out: number, inF: number, proceed: (norm2: number) => boolean, floor?: number): Products<StackFactors | null> {
  const ps = p.subarray(0, out * m); // Pᵀ row-major (m × out)
  const qm = qt.subarray(0, inF * m); // Q row-major (m × in)
  const gp = new Float64Array(m * m);
  if (m > 0) yield { transA: false, transB: true, m, n: m, k: out, a: ps, b: ps, out: gp };
  // Q's side: R with RᵀR = Q·Qᵀ from the Cholesky factor of the Gram matrix when its bound allows
  // (Q left as it is, for A = Z·Q), else Householder QR (Q overwritten: a copy kept for A = Z·Q).
  const viaGram = yield* choleskySide(qm, m, inF);
  let rq: Float64Array;
  let tq: number;
  let qs: Float64Array | null;
  let qrQ: HouseholderQR | null = null;
  let rinv: Float64Array | null;
  if (viaGram !== null) {
    ({ r: rq, rinv } = viaGram);
    tq = m;
    qs = qm;
  } else {
    qs = m <= inF ? qm.slice() : null;
    qrQ = yield* blockedQR(qm, inF, m);
    ({ r: rq, t: tq } = qrQ);
    rinv = qs !== null && tq === m ? wellConditionedInverse(rq, m) : null;
  }
  const orth = viaGram?.orth ?? 0;
  let core = yield* gramCore(gp, rq, m, tq, out, floor, orth);
  let pt = ps; // B = P·X from P as it is: the Gram route leaves it untouched
  if (core === null) {
    pt = ps.slice(); // the QR overwrites P: Pᵀ kept for B = P·X
    core = yield* qrCore(ps, rq, m, tq, out);
  }
  core = { ...core, route: { p: core.route.p, q: viaGram !== null ? 'gram' : 'qr' } };
  if (!proceed(core.norm2)) return null;
  const { vectors, sigma, route } = core;
  const order = [...sigma.keys()].sort((x, y) => sigma[y] - sigma[x]);
  const sorted = Float64Array.from(order, (c) => sigma[c]);
  const below = floor ?? (sorted[0] ?? 0) * RESOLUTION;
  let rank = 0;
  while (rank < sorted.length && sorted[rank] > below && sorted[rank] > 0) rank++;
  // Each direction balanced: column c of B and row c of A carry √σ_c, through the small factors.
  // Xᵀ = diag(1/√σ)·V_kᵀ·R_q (rank × m); B = P·X (out × rank); A = diag(√σ)·V_kᵀ·Q_qᵀ (rank × in).
  const vk = new Float64Array(rank * tq);
  const va = new Float64Array(rank * tq);
  for (let c = 0; c < rank; c++) {
    const v = vectors.subarray(order[c] * tq, (order[c] + 1) * tq);
    const f = Math.sqrt(sorted[c]);
    for (let i = 0; i < tq; i++) {
      vk[c * tq + i] = v[i] / f;
      va[c * tq + i] = v[i] * f;
    }
  }
  const xt = new Float64Array(rank * m);
  const b = new Float64Array(out * rank);
  const a = new Float64Array(rank * inF);
  if (rank > 0) {
    yield { transA: false, transB: false, m: rank, n: m, k: tq, a: vk, b: rq, out: xt };
    yield { transA: true, transB: true, m: out, n: rank, k: m, a: pt, b: xt, out: b };
    if (rinv !== null) {
      // Q_qᵀ = R_q⁻ᵀ·Q: A = (diag(√σ)·V_kᵀ·R_q⁻ᵀ)·Q, two products, the second one n·m·rank.
      const z = new Float64Array(rank * m);
      yield { transA: false, transB: true, m: rank, n: m, k: m, a: va, b: rinv, out: z };
      yield { transA: false, transB: false, m: rank, n: inF, k: m, a: z, b: qs!, out: a };
    } else {
      for (let c = 0; c < rank; c++) a.set(va.subarray(c * tq, (c + 1) * tq), c * inF);
      yield* applyQ(qrQ!, a, rank);
    }
  }
  return { b, a, rank, sigma: sorted, route };
}

/** The core's right singular vectors (rows of `vectors`, tq × tq), σ (unsorted) and ‖P·Q‖_F². */
interface CoreSpectrum {
  readonly vectors: Float64Array;
  readonly sigma: Float64Array;
  readonly norm2: number;
  readonly route: CoreRoute;
}

/**
 * The core through P's Gram matrix G_p = PᵀP (`gp`, m × m, one product; P itself is not touched):
 * M = R_q·G_p·R_qᵀ = CᵀC for any R_p with R_pᵀR_p = G_p, so V and σ² are M's eigenvectors and
 * eigenvalues, without the QR of P. Forming G_p squares the cancellation in P·Q: each λ of the
 * computed M is within β = (out + 4m)·2⁻⁵²·‖P‖_F²·‖R_q‖_F² of M's (the rounding of G_p and of the two
 * products, Weyl; the eigensolver's own error is the QR route's too). Used only when that cannot
 * matter: every λ clears the floor by β (so every direction is kept, as the QR route would, and
 * B·A = P·Q exactly: V orthogonal), and β ≤ {@link GRAM_LIMIT}·λ_min (every σ within a relative
 * GRAM_LIMIT/2 of its value). Otherwise null, and the caller takes the QR of P.
 */
function* gramCore(gp: Float64Array, rq: Float64Array, m: number, tq: number, out: number, floor: number | undefined, orth: number): Products<CoreSpectrum | null> {
  if (tq === 0) return null;
  let pNorm2 = 0;
  for (let i = 0; i < m; i++) pNorm2 += gp[i * m + i];
  let rNorm2 = 0;
  for (let i = 0; i < tq * m; i++) rNorm2 += rq[i] * rq[i];
  const beta = (out + 4 * m) * 2 ** -52 * pNorm2 * rNorm2;
  // M = (R_q·G_p)·R_qᵀ (tq × tq).
  const rg = new Float64Array(tq * m);
  yield { transA: false, transB: false, m: tq, n: m, k: m, a: rq, b: gp, out: rg };
  const mm = new Float64Array(tq * tq);
  yield { transA: false, transB: true, m: tq, n: tq, k: m, a: rg, b: rq, out: mm };
  let norm2 = 0;
  for (let i = 0; i < tq; i++) norm2 += mm[i * tq + i];
  symmetrize(mm, tq);
  const { values, vectors } = yield* eigenProducts(mm, tq);
  const lmin = values[tq - 1];
  const lmax = values[0];
  const floor2 = (floor ?? Math.sqrt(Math.max(0, lmax + beta)) * RESOLUTION) ** 2;
  if (!((lmin - beta) * (1 - orth) > floor2 && beta <= GRAM_LIMIT * lmin)) return null;
  return { vectors, sigma: Float64Array.from(values, Math.sqrt), norm2, route: GRAM_ROUTE };
}

/**
 * Q's side through its Gram matrix G_q = Q·Qᵀ (`qm` = Q row-major m × in, not touched; one product)
 * and its Cholesky factor, G_q ≈ RᵀR: R stands for Householder QR's R_q, and Q = Rᵀ·U with
 * U = R⁻ᵀ·Q. U's rows are orthonormal only to ‖U·Uᵀ − I‖₂ ≤ orth = (in + 2m)·2⁻⁵²·‖R‖_F²·‖R⁻¹‖_F²
 * (the rounding of G_q and of the Cholesky factorization, carried through R⁻¹), so every σ of P·Rᵀ
 * is within a relative factor √(1 ± orth) of P·Q's; B·A = P·Rᵀ·V·Vᵀ·R⁻ᵀ·Q stays P·Q to κ(R)·2⁻⁵²
 * (as A = Z·Q after a QR). Used when R is well conditioned ({@link wellConditionedInverse}) and
 * orth ≤ {@link GRAM_LIMIT}; else null (a QR of Q instead; also for m > in and a singular G_q).
 */
function* choleskySide(qm: Float64Array, m: number, inF: number): Products<{ r: Float64Array; rinv: Float64Array; orth: number } | null> {
  if (m === 0 || m > inF) return null;
  const gq = new Float64Array(m * m);
  yield { transA: false, transB: true, m, n: m, k: inF, a: qm, b: qm, out: gq };
  symmetrize(gq, m);
  const r = cholesky(gq, m);
  const rinv = r === null ? null : wellConditionedInverse(r, m);
  if (rinv === null) return null;
  let r2 = 0;
  let x2 = 0;
  for (let i = 0; i < m * m; i++) {
    r2 += r![i] * r![i];
    x2 += rinv[i] * rinv[i];
  }
  const orth = (inF + 2 * m) * 2 ** -52 * r2 * x2;
  return orth <= GRAM_LIMIT ? { r: r!, rinv, orth } : null;
}

/**
 * R (row-major m × m, upper triangular) with RᵀR = G for the symmetric `g` (row-major m × m,
 * overwritten: R is formed in place), or null when G is not numerically positive definite (a pivot
 * ≤ 0 or not finite). Right-looking, row by row: each step scales row i and updates the rows below it
 * in their upper triangles (contiguous).
 */
function cholesky(g: Float64Array, m: number): Float64Array | null {
  for (let i = 0; i < m; i++) {
    const ri = i * m;
    const d = g[ri + i];
    if (!(d > 0) || d === Infinity) return null;
    const f = Math.sqrt(d);
    g[ri + i] = f;
    for (let j = i + 1; j < m; j++) g[ri + j] /= f;
    for (let k = i + 1; k < m; k++) {
      const rk = k * m;
      const x = g[ri + k];
      if (x === 0) continue;
      for (let j = k; j < m; j++) g[rk + j] -= x * g[ri + j];
    }
    g.fill(0, ri, ri + i);
  }
  return g;
}

/** The core through a QR of P (`ps`, overwritten): C = R_p·R_qᵀ, V from CᵀC, σ_c = ‖C·v_c‖. */
function* qrCore(ps: Float64Array, rq: Float64Array, m: number, tq: number, out: number): Products<CoreSpectrum> {
  const { r: rp, t: tp } = yield* blockedQR(ps, out, m);
  // C = R_p·R_qᵀ (tp × tq), G = CᵀC (tq × tq), its eigenvectors V (rows), and C·v_c (rows of V·Cᵀ).
  const core = new Float64Array(tp * tq);
  if (tp * tq > 0) yield { transA: false, transB: true, m: tp, n: tq, k: m, a: rp, b: rq, out: core };
  const norm2 = core.reduce((s, x) => s + x * x, 0);
  const gram = new Float64Array(tq * tq);
  if (tq > 0) yield { transA: true, transB: false, m: tq, n: tq, k: tp, a: core, b: core, out: gram };
  symmetrize(gram, tq);
  const { vectors } = yield* eigenProducts(gram, tq);
  const cv = new Float64Array(tq * tp);
  if (tq * tp > 0) yield { transA: false, transB: true, m: tq, n: tp, k: tq, a: vectors, b: core, out: cv };
  const sigma = new Float64Array(tq);
  for (let c = 0; c < tq; c++) {
    let ss = 0;
    for (let i = 0; i < tp; i++) ss += cv[c * tp + i] ** 2;
    sigma[c] = Math.sqrt(ss);
  }
  return { vectors, sigma, norm2, route: { p: 'qr', q: 'qr' } };
}

/**
 * F = P_F·Q_F (`p` out × d and `qt` in × d, column-major) when none of its directions reaches
 * `floor`, else null. F's singular values are those of the d × d Grams: σ² = λ(Wᵀ·G_q·W) with
 * G_p = P_Fᵀ·P_F = W·Wᵀ (W = U·Λ^½ from G_p's eigendecomposition) and G_q = Q_F·Q_Fᵀ, each Gram one
 * product; σ² is then off by at most (out + in + 8d)·2⁻⁵²·‖P_F‖_F²·‖Q_F‖_F² (the Grams' rounding,
 * carried through). When the largest σ² plus that bound stays below floor², F keeps no direction
 * (as a factorization of F would find) and only its σ are needed: for the tail and the error. This
 * saves the two QRs of F's stack; otherwise the caller factors F.
 */
function* omittedSpectrum(p: Float64Array, qt: Float64Array, d: number, out: number, inF: number, floor: number): Products<StackFactors | null> {
  if (d === 0) return { b: new Float64Array(0), a: new Float64Array(0), rank: 0, sigma: new Float64Array(0), route: GRAM_ROUTE };
  const gp = new Float64Array(d * d);
  const gq = new Float64Array(d * d);
  const pf = p.subarray(0, out * d);
  const qf = qt.subarray(0, inF * d);
  yield { transA: false, transB: true, m: d, n: d, k: out, a: pf, b: pf, out: gp };
  yield { transA: false, transB: true, m: d, n: d, k: inF, a: qf, b: qf, out: gq };
  let tp = 0;
  let tq = 0;
  for (let i = 0; i < d; i++) {
    tp += gp[i * d + i];
    tq += gq[i * d + i];
  }
  const bound = (out + inF + 8 * d) * 2 ** -52 * tp * tq;
  if (!(bound < floor * floor)) return null;
  symmetrize(gp, d);
  symmetrize(gq, d);
  const { values, vectors } = yield* eigenProducts(gp, d);
  // Wᵀ = Λ^½·Uᵀ: row c of `vectors` scaled by √λ_c (λ_c < 0 is rounding: 0).
  const wt = new Float64Array(d * d);
  for (let c = 0; c < d; c++) {
    const f = Math.sqrt(Math.max(0, values[c]));
    for (let i = 0; i < d; i++) wt[c * d + i] = vectors[c * d + i] * f;
  }
  const wg = new Float64Array(d * d);
  const core = new Float64Array(d * d);
  yield { transA: false, transB: false, m: d, n: d, k: d, a: wt, b: gq, out: wg };
  yield { transA: false, transB: true, m: d, n: d, k: d, a: wg, b: wt, out: core };
  symmetrize(core, d);
  const lambda = symmetricEigenvalues(core, d);
  if (!((lambda[0] ?? 0) + bound < floor * floor)) return null;
  const sigma = Float64Array.from(lambda, (x) => Math.sqrt(Math.max(0, x)));
  return { b: new Float64Array(0), a: new Float64Array(0), rank: 0, sigma, route: GRAM_ROUTE };
}

/** a ← (a + aᵀ)/2 for the row-major n × n `a`. */
function symmetrize(a: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i] = (a[i * n + j] + a[j * n + i]) / 2;
}

/**
 * R⁻¹ (row-major m × m) of the upper triangular `r` (row-major m × m) when ‖R‖_F·‖R⁻¹‖_F ≤
 * {@link COND_LIMIT}, else null (a zero or non-finite pivot included). Column j of R⁻¹ by back
 * substitution, rows of R read contiguously.
 */
function wellConditionedInverse(r: Float64Array, m: number): Float64Array | null {
  const x = new Float64Array(m * m);
  const col = new Float64Array(m);
  let rNorm2 = 0;
  for (let i = 0; i < m; i++) for (let j = i; j < m; j++) rNorm2 += r[i * m + j] * r[i * m + j];
  let xNorm2 = 0;
  for (let j = 0; j < m; j++) {
    // R·x = e_j: x[j] = 1/R[j][j], x[i] = −(Σ_{l=i+1..j} R[i][l]·x[l]) / R[i][i] for i < j.
    col.fill(0, 0, j + 1);
    col[j] = 1 / r[j * m + j];
    for (let i = j - 1; i >= 0; i--) {
      const ri = i * m;
      let s = 0;
      for (let l = i + 1; l <= j; l++) s += r[ri + l] * col[l];
      col[i] = -s / r[ri + i];
    }
    for (let i = 0; i <= j; i++) {
      x[i * m + j] = col[i];
      xNorm2 += col[i] * col[i];
    }
    if (!(xNorm2 * rNorm2 <= COND_LIMIT * COND_LIMIT)) return null;
  }
  return x;
}

function refactored(f: StackFactors | null, out: number, inF: number, innerDim: number, coreDim: number): Refactored {
  const { b, a, rank, sigma, route } = f!;
  const norm = Math.sqrt(sigma.reduce((s, x) => s + x * x, 0));
  const error = tailError(sigma, rank);
  return {
    b: { shape: [out, rank], data: b },
    a: { shape: [rank, inF], data: a },
    rank,
    exactRank: rank,
    innerDim,
    coreDim,
    norm,
    truncationError: error,
    relativeError: norm === 0 ? 0 : error / norm,
    singularValues: sigma,
    coreRoute: route,
  };
}

/**
 * G's and F's directions side by side (ΔW = G + F), ordered by σ: the kept ones of both, then the
 * dropped ones. B·A = G_k + F_k exactly; the σ listed are G's and F's, within ‖F‖₂ of ΔW's.
 */
function merged(g: StackFactors, f: StackFactors, out: number, inF: number, innerDim: number, coreDim: number): Refactored {
  const tail = [...g.sigma.subarray(g.rank), ...f.sigma.subarray(f.rank)].sort((x, y) => y - x);
  if (f.rank === 0) return refactored({ b: g.b, a: g.a, rank: g.rank, sigma: Float64Array.from([...g.sigma.subarray(0, g.rank), ...tail]), route: g.route }, out, inF, innerDim, coreDim);
  const rank = g.rank + f.rank;
  const kept = [...Array.from({ length: g.rank }, (_, c) => ({ from: g, c })), ...Array.from({ length: f.rank }, (_, c) => ({ from: f, c }))]
    .sort((x, y) => y.from.sigma[y.c] - x.from.sigma[x.c]);
  const b = new Float64Array(out * rank);
  const a = new Float64Array(rank * inF);
  const fromG = kept.map(({ from }) => from === g);
  const col = kept.map(({ c }) => c);
  for (let o = 0; o < out; o++) {
    for (let dst = 0; dst < rank; dst++) b[o * rank + dst] = fromG[dst] ? g.b[o * g.rank + col[dst]] : f.b[o * f.rank + col[dst]];
  }
  kept.forEach(({ from, c }, dst) => a.set(from.a.subarray(c * inF, (c + 1) * inF), dst * inF));
  const sigma = Float64Array.from([...kept.map(({ from, c }) => from.sigma[c]), ...tail]);
  return refactored({ b, a, rank, sigma, route: g.route }, out, inF, innerDim, coreDim);
}

/** ‖ΔW − B·A‖_F when the first `rank` directions are kept: √(Σ_tail σ²). */
function tailError(singularValues: Float64Array, rank: number): number {
  let tail2 = 0;
  for (let c = rank; c < singularValues.length; c++) tail2 += singularValues[c] * singularValues[c];
  return Math.sqrt(tail2);
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
  const truncationError = tailError(full.singularValues, rank);
  return {
    ...full,
    b: { shape: [out, rank], data: b },
    a: { shape: [rank, inF], data: a },
    rank,
    truncationError,
    relativeError: full.norm === 0 ? 0 : truncationError / full.norm,
  };
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
