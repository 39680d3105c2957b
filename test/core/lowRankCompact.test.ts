// The compaction of near-dependent rows before the re-factorization (src/core/lowRank/compact.ts) and
// the split ΔW = G + F it leads to in refactorLowRank, against float64 dense references.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { refactorLowRank, type UpdateTerm } from '../../src/core/lowRank.js';
import { pivotedEchelon } from '../../src/core/lowRank/compact.js';
import { householderQR, applyHouseholderQ } from '../../src/core/lowRank/householder.js';
import { weightedAverage } from '../../src/core/average.js';
import { factorResidual } from '../../src/core/residual.js';
import { createRng, randomMatrix, type Rng } from '../../src/core/random.js';
import type { Matrix } from '../../src/core/tensor.js';
import { dense64, frobenius, frobeniusDiff, jacobiSingularValues, refMatmul } from './reference.js';

/**
 * What `fedex export` reads for one module of a FedEx federation: `rounds` stacked residuals of k
 * clients at rank r (float32 Ā, as the coordinator sends it), then the global adapter.
 */
function fedexTerms(out: number, inF: number, rounds: number, r: number, rng: Rng): UpdateTerm[] {
  const w = [0.5, 0.3, 0.2];
  let a = randomMatrix(r, inF, rng, 0.5);
  let b: Matrix<Float32Array> = { shape: [out, r], data: new Float32Array(out * r) };
  const terms: UpdateTerm[] = [];
  for (let t = 0; t < rounds; t++) {
    const local = w.map(() => ({
      a: { shape: a.shape, data: Float32Array.from(a.data, (v) => v + 0.05 * rng.gaussian()) },
      b: { shape: b.shape, data: Float32Array.from(b.data, (v) => v + 0.01 * rng.gaussian()) },
    }));
    const abar = weightedAverage(local.map((c) => c.a), w);
    const bbar = weightedAverage(local.map((c) => c.b), w);
    const res = factorResidual(local, w, abar, 'stacked');
    terms.push({ kind: 'factored', p: res.p, q: res.q, scale: 2 });
    a = abar;
    b = bbar;
  }
  terms.push({ kind: 'factored', p: b, q: a, scale: 2 });
  return terms;
}

/** The `rows` × `inF` row-major `x` with one more row, `extra(i)` in column i (called in column order). */
function withExtraRow(x: ArrayLike<number>, rows: number, inF: number, extra: (i: number) => number): { shape: [number, number]; data: Float64Array } {
  const data = new Float64Array((rows + 1) * inF);
  data.set(Float64Array.from(x));
  for (let i = 0; i < inF; i++) data[rows * inF + i] = extra(i);
  return { shape: [rows + 1, inF], data };
}

describe('pivotedEchelon', () => {
  test('picks d distinct pivot columns with Nᵀ[:, K] = Nᵀ[:, J]·M (≤ 1e-14), pivots where |Nᵀ| is largest', () => {
    const rng = createRng(3);
    const w = 9;
    const d = 3;
    // d orthonormal rows of length w.
    const x = Float64Array.from({ length: w * d }, () => rng.gaussian());
    const qr = householderQR(x, w, d);
    const q = new Float64Array(w * d);
    for (let c = 0; c < d; c++) q[c * w + c] = 1;
    applyHouseholderQ(qr, q, d);
    const { pivots, others, m } = pivotedEchelon(q, d, w);
    assert.equal(new Set(pivots).size, d);
    assert.deepEqual([...pivots, ...others].sort((a, b) => a - b), [...Array(w).keys()]);
    let largest = 0;
    for (let i = 0; i < q.length; i++) if (Math.abs(q[i]) > Math.abs(q[largest])) largest = i;
    assert.equal(pivots[0], largest % w);
    for (let s = 0; s < d; s++) {
      others.forEach((k, c) => {
        let v = 0;
        for (let z = 0; z < d; z++) v += q[s * w + pivots[z]] * m[z * others.length + c];
        assert.ok(Math.abs(v - q[s * w + k]) <= 1e-14, `row ${s}, column ${k}: ${v} vs ${q[s * w + k]}`);
      });
    }
  });
});

describe('refactorLowRank on stacked FedEx residuals (compaction)', () => {
  for (const [out, inF] of [[70, 40], [40, 70], [48, 48]] as const) {
    test(`${out} × ${inF}, 4 rounds × 3 clients at r = 3: the rounding rows are factored apart, B·A within the reported error of ΔW`, () => {
      const rng = createRng(out * 1000 + inF);
      const terms = fedexTerms(out, inF, 4, 3, rng);
      const ref = dense64(terms, out, inF);
      const r = refactorLowRank(terms, out, inF);
      assert.equal(r.innerDim, 4 * 9 + 3);
      // Each round loses its r near-zero combinations Σ w_i (A_i − Ā): m′ = 4·(k − 1)·r + r.
      assert.equal(r.coreDim, 4 * 6 + 3);
      assert.ok(r.exactRank >= 27, `exact rank ${r.exactRank}`);
      const measured = frobeniusDiff(refMatmul(r.b, r.a), ref);
      const norm = frobenius(ref);
      assert.ok(Math.abs(measured - r.truncationError) <= 1e-13 * norm, `measured ${measured}, reported ${r.truncationError}`);
      assert.ok(r.relativeError < 1e-7, `relative error ${r.relativeError}`);
      // ‖ΔW‖ from G and F apart: within ‖F‖_F (here ~1e-8·‖ΔW‖) of the exact value.
      assert.ok(Math.abs(r.norm - norm) <= 1e-7 * norm, `norm ${r.norm} vs ${norm}`);
      const sv = jacobiSingularValues(ref, out, inF);
      // The σ listed (G's, then F's) are ΔW's to within ‖F‖₂ (Weyl), here ~1e-8·σ_1.
      for (let i = 0; i < 27; i++) assert.ok(Math.abs(r.singularValues[i] - sv[i]) <= 1e-7 * sv[0], `σ_${i}: ${r.singularValues[i]} vs ${sv[i]}`);
    });
  }

  // A residual stored dense (smaller than its factors) joins the stack as (s·D, I) or (I, s·D): its
  // columns must be kept whole beside the compacted factored terms (they once were dropped).
  for (const [out, inF] of [[16, 16], [8, 16], [16, 8]] as const) {
    test(`${out} × ${inF}: a dense residual, a compacted FedEx round and the global adapter together give ΔW to float64 round-off`, () => {
      const rng = createRng(out * 31 + inF);
      const [round, global] = fedexTerms(out, inF, 1, 2, rng).slice(-2);
      const dense = dense64(fedexTerms(out, inF, 1, 4, rng).slice(0, 1), out, inF);
      const terms: UpdateTerm[] = [{ kind: 'dense', d: { shape: [out, inF], data: Float32Array.from(dense) }, scale: 1 }, round, global];
      const ref = dense64(terms, out, inF);

      const r = refactorLowRank(terms, out, inF);

      const measured = frobeniusDiff(refMatmul(r.b, r.a), ref);
      assert.ok(measured <= 1e-7 * frobenius(ref), `‖B·A − ΔW‖ = ${measured.toExponential(2)} of ‖ΔW‖ = ${frobenius(ref).toExponential(2)}`);
      assert.ok(Math.abs(measured - r.truncationError) <= 1e-13 * frobenius(ref), `measured ${measured}, reported ${r.truncationError}`);
    });
  }

  test('exactly dependent rows inside a term: taken out exactly, B·A = ΔW to 1e-13 at the true rank', () => {
    const rng = createRng(17);
    const out = 30;
    const inF = 25;
    const x = randomMatrix(3, inF, rng);
    // Q = [X; 2·X₀ − X₁] (row 3 a combination of rows 0 and 1, in float64 exactly representable).
    const q = withExtraRow(x.data, 3, inF, (i) => 2 * x.data[i] - x.data[inF + i]);
    const terms: UpdateTerm[] = [
      { kind: 'factored', p: randomMatrix(out, 4, rng), q, scale: 1 },
      { kind: 'factored', p: randomMatrix(out, 2, rng), q: randomMatrix(2, inF, rng), scale: -0.5 },
    ];
    const ref = dense64(terms, out, inF);
    const r = refactorLowRank(terms, out, inF);
    assert.equal(r.innerDim, 6);
    assert.equal(r.coreDim, 5);
    assert.equal(r.exactRank, 5);
    assert.ok(frobeniusDiff(refMatmul(r.b, r.a), ref) <= 1e-13 * frobenius(ref));
  });

  test('near-dependent rows that carry a large part (‖F‖ > 2⁻²⁰·‖G‖): the stack is factored whole, error as reported', () => {
    const rng = createRng(23);
    const out = 36;
    const inF = 28;
    const x = randomMatrix(4, inF, rng);
    // Row 4 = row 0 / 2 + 1e-6·noise: near-dependent (below 2⁻¹⁶); the pivot is row 4 (the larger
    // coefficient of the combination), and its P column is 1e4 times larger than the others.
    const q = withExtraRow(x.data, 4, inF, (i) => 0.5 * x.data[i] + 1e-6 * rng.gaussian());
    const p = Float64Array.from(randomMatrix(out, 5, rng).data);
    for (let o = 0; o < out; o++) p[o * 5 + 4] *= 1e4;
    const terms: UpdateTerm[] = [{ kind: 'factored', p: { shape: [out, 5], data: p }, q, scale: 1 }];
    const ref = dense64(terms, out, inF);
    const r = refactorLowRank(terms, out, inF);
    assert.equal(r.coreDim, 5, 'factored whole');
    // As without compaction: every direction above σ_1·2⁻²⁶ kept, the error the σ below it.
    const measured = frobeniusDiff(refMatmul(r.b, r.a), ref);
    assert.ok(Math.abs(measured - r.truncationError) <= 1e-13 * frobenius(ref), `measured ${measured}, reported ${r.truncationError}`);
    assert.ok(r.relativeError <= 2 ** -26, `${r.relativeError}`);
  });

  test('--max-rank on a compacted federation: the reported error matches a float64 recomputation', () => {
    const rng = createRng(31);
    const terms = fedexTerms(50, 35, 3, 2, rng);
    const ref = dense64(terms, 50, 35);
    const norm = frobenius(ref);
    for (const k of [3, 10]) {
      const r = refactorLowRank(terms, 50, 35, { maxRank: k });
      assert.equal(r.rank, k);
      const lost = frobeniusDiff(refMatmul(r.b, r.a), ref);
      // Exact up to the cross term of the dropped G directions with F (at most √2·‖F‖ ≈ 1e-7·‖ΔW‖).
      assert.ok(Math.abs(r.truncationError - lost) <= 1e-7 * norm, `reported ${r.truncationError}, measured ${lost}`);
      const sv = jacobiSingularValues(ref, 50, 35);
      const eckartYoung = Math.sqrt(sv.slice(k).reduce((s, v) => s + v * v, 0));
      assert.ok(lost <= eckartYoung + 1e-7 * norm, `lost ${lost}, optimal ${eckartYoung}`);
    }
  });
});
