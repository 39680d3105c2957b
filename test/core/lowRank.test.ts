import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyHouseholderQ, householderQR, refactorLowRank, symmetricEigen, symmetricEigenvalues, type CoreRoute, type UpdateTerm } from '../../src/core/lowRank.js';
import { createRng, randomMatrix, type Rng } from '../../src/core/random.js';
import type { Matrix } from '../../src/core/tensor.js';
import { dense64, frobenius, frobeniusDiff, jacobiSingularValues, randomClients, refMatmul, spec } from './reference.js';
import { factorResidual } from '../../src/core/residual.js';
import { weightedAverage } from '../../src/core/average.js';

function product(b: Matrix, a: Matrix): Float64Array {
  return refMatmul(b, a);
}

function factoredTerm(out: number, inF: number, k: number, rng: Rng, scale = 1): UpdateTerm {
  return { kind: 'factored', p: randomMatrix(out, k, rng), q: randomMatrix(k, inF, rng), scale };
}

describe('householderQR', () => {
  // 300 × 200: two blocks of the blocked QR, each panel split recursively down to its leaves
  // (uneven halves); the rank-deficient cases have zero and repeated columns (zero reflectors).
  const cases: [number, number, string][] = [[9, 4, ''], [4, 9, ''], [6, 6, ''], [30, 11, ''], [150, 70, ''], [70, 150, ''], [300, 200, ''], [120, 60, 'rank-deficient '], [40, 90, 'rank-deficient ']];
  for (const [n, m, what] of cases) {
    test(`Q·R reproduces a ${what}${n} × ${m} matrix and Q has orthonormal columns`, () => {
      const rng = createRng(n * 100 + m);
      const x0 = Float64Array.from({ length: n * m }, () => rng.gaussian());
      if (what !== '') {
        // Column 3 zero, column 20 a copy of column 5, columns 40.. zero.
        x0.fill(0, 3 * n, 4 * n);
        x0.copyWithin(20 * n, 5 * n, 6 * n);
        x0.fill(0, 40 * n);
      }
      const x = x0.slice();
      const qrx = householderQR(x, n, m);
      const { r, t } = qrx;
      // Q·R column by column: apply Q to each column of R padded with zeros.
      const qr = new Float64Array(n * m);
      for (let c = 0; c < m; c++) for (let i = 0; i < t; i++) qr[c * n + i] = r[i * m + c];
      applyHouseholderQ(qrx, qr, m);
      assert.ok(frobeniusDiff(qr, x0) <= 1e-13 * frobenius(x0), `${frobeniusDiff(qr, x0)}`);
      const q = new Float64Array(n * t);
      for (let c = 0; c < t; c++) q[c * n + c] = 1;
      applyHouseholderQ(qrx, q, t);
      for (let a = 0; a < t; a++) {
        for (let b = 0; b < t; b++) {
          let s = 0;
          for (let i = 0; i < n; i++) s += q[a * n + i] * q[b * n + i];
          assert.ok(Math.abs(s - (a === b ? 1 : 0)) <= 1e-14, `QᵀQ[${a}][${b}] = ${s}`);
        }
      }
    });
  }
});

describe('symmetricEigen', () => {
  const cases: [string, number, (rng: Rng, n: number) => Float64Array][] = [
    ['random', 1, randomSymmetric],
    ['random', 2, randomSymmetric],
    ['random', 37, randomSymmetric],
    ['rank 3 (repeated zero eigenvalues)', 25, (rng, n) => lowRankSymmetric(rng, n, 3)],
    ['diagonal with repeated values', 12, (_rng, n) => Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? Math.floor((i / (n + 1)) / 4) : 0))],
    ['zero', 5, (_rng, n) => new Float64Array(n * n)],
    ['graded (1e-12 … 1)', 20, (rng, n) => gradedSymmetric(rng, n)],
  ];
  for (const [what, n, make] of cases) {
    test(`${what} ${n} × ${n}: A·v = λ·v and orthonormal vectors to ≤ 1e-13·‖A‖`, () => {
      const rng = createRng(n);
      const a0 = make(rng, n);
      const { values, vectors } = symmetricEigen(a0.slice(), n);
      const scale = Math.max(frobenius(a0), 1e-300);
      for (let c = 0; c < n; c++) {
        if (c > 0) assert.ok(values[c] <= values[c - 1], 'descending');
        let res = 0;
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let j = 0; j < n; j++) s += a0[i * n + j] * vectors[c * n + j];
          res = Math.max(res, Math.abs(s - values[c] * vectors[c * n + i]));
        }
        assert.ok(res <= 1e-13 * scale || (scale === 1e-300 && res === 0), `residual ${res} for λ_${c}`);
        for (let d = 0; d <= c; d++) {
          let s = 0;
          for (let i = 0; i < n; i++) s += vectors[c * n + i] * vectors[d * n + i];
          assert.ok(Math.abs(s - (c === d ? 1 : 0)) <= 1e-13, `v_${c}·v_${d} = ${s}`);
        }
      }
    });
  }
});

describe('symmetricEigen against a known spectrum (A = U·Λ·Uᵀ, U a random orthogonal matrix)', () => {
  // n = 150 and 97: several back-transformation blocks, rows left over by the rotations' groups of 4.
  const spectra: [string, number, (i: number, n: number) => number][] = [
    ['random', 150, (i) => Math.sin(7.3 * i + 1) * 3],
    ['clustered (1 + 1e-10·i, three clusters)', 97, (i) => [1, -2, 5][i % 3] + 1e-10 * i],
    ['degenerate (2, −1 and 0 repeated: multiplicities 48, 24, 25)', 97, (i) => [2, 2, -1, 0][i % 4]],
    ['graded (1 … 1e-15)', 60, (i, n) => 10 ** (-15 * i / (n - 1))],
  ];
  for (const [what, n, value] of spectra) {
    test(`${what}, ${n} × ${n}: λ to ≤ 1e-13·‖A‖₂, A·v = λ·v and orthonormal vectors to ≤ 1e-13·‖A‖; the values-only path agrees`, () => {
      const rng = createRng(n + 7);
      const lambda = Float64Array.from({ length: n }, (_, i) => value(i, n));
      const a0 = conjugated(lambda, n, rng);
      const norm2 = Math.max(...Array.from(lambda, Math.abs));
      const expected = lambda.slice().sort().reverse();
      const { values, vectors } = symmetricEigen(a0.slice(), n);
      const only = symmetricEigenvalues(a0.slice(), n);
      for (let c = 0; c < n; c++) {
        assert.ok(Math.abs(values[c] - expected[c]) <= 1e-13 * norm2, `λ_${c}: ${values[c]} vs ${expected[c]}`);
        assert.ok(Math.abs(only[c] - expected[c]) <= 1e-13 * norm2, `values only, λ_${c}: ${only[c]} vs ${expected[c]}`);
        let res = 0;
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let j = 0; j < n; j++) s += a0[i * n + j] * vectors[c * n + j];
          res = Math.max(res, Math.abs(s - values[c] * vectors[c * n + i]));
        }
        assert.ok(res <= 1e-13 * norm2, `residual ${res} for λ_${c}`);
      }
      for (let c = 0; c < n; c++) {
        for (let d = 0; d <= c; d++) {
          let s = 0;
          for (let i = 0; i < n; i++) s += vectors[c * n + i] * vectors[d * n + i];
          assert.ok(Math.abs(s - (c === d ? 1 : 0)) <= 1e-13, `v_${c}·v_${d} = ${s}`);
        }
      }
    });
  }
});

/** U·diag(λ)·Uᵀ with U = H_1·…·H_n (random Householder reflectors), symmetrized, in float64. */
function conjugated(lambda: Float64Array, n: number, rng: Rng): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) a[i * n + i] = lambda[i];
  for (let h = 0; h < n; h++) {
    const v = Float64Array.from({ length: n }, () => rng.gaussian());
    const vv = v.reduce((s, x) => s + x * x, 0);
    // A ← H·A·H with H = I − 2·v·vᵀ/(vᵀv): rows, then columns.
    for (const side of [0, 1]) {
      for (let k = 0; k < n; k++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += v[i] * (side === 0 ? a[i * n + k] : a[k * n + i]);
        const f = (2 * s) / vv;
        for (let i = 0; i < n; i++) {
          if (side === 0) a[i * n + k] -= f * v[i];
          else a[k * n + i] -= f * v[i];
        }
      }
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i] = (a[i * n + j] + a[j * n + i]) / 2;
  return a;
}

function randomSymmetric(rng: Rng, n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.gaussian();
  return a;
}

function lowRankSymmetric(rng: Rng, n: number, r: number): Float64Array {
  const u = Float64Array.from({ length: n * r }, () => rng.gaussian());
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < r; k++) a[i * n + j] += u[i * r + k] * u[j * r + k] * (k === 1 ? -1 : 1);
  return a;
}

function gradedSymmetric(rng: Rng, n: number): Float64Array {
  const g = Float64Array.from({ length: n * n }, () => rng.gaussian());
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j] += g[i * n + k] * g[j * n + k] * 10 ** (-12 * k / (n - 1));
  return a;
}

describe('refactorLowRank: ΔW = Σ s_j·P_j·Q_j as one B·A', () => {
  for (const [out, inF, ks] of [[40, 23, [3, 5, 2]], [17, 50, [4, 4]], [12, 12, [6, 9]], [8, 30, [5, 6]]] as const) {
    test(`${out} × ${inF}, inner sizes ${ks.join('+')}: exact B·A (≤ 1e-13 relative), singular values as a Jacobi SVD of the dense sum`, () => {
      const rng = createRng(out * inF);
      const terms = ks.map((k, j) => factoredTerm(out, inF, k, rng, j === 0 ? 0.5 : -1.25));
      const ref = dense64(terms, out, inF);
      const r = refactorLowRank(terms, out, inF);
      const m = ks.reduce((a, b) => a + b, 0);
      const full = Math.min(out, inF, m);
      assert.equal(r.exactRank, full);
      assert.equal(r.rank, full);
      assert.equal(r.innerDim, m);
      assert.deepEqual(r.b.shape, [out, full]);
      assert.deepEqual(r.a.shape, [full, inF]);
      assert.ok(frobeniusDiff(product(r.b, r.a), ref) <= 1e-13 * frobenius(ref), `${frobeniusDiff(product(r.b, r.a), ref)}`);
      assert.equal(r.truncationError, 0);
      const sv = jacobiSingularValues(ref, out, inF);
      for (let i = 0; i < full; i++) assert.ok(Math.abs(r.singularValues[i] - sv[i]) <= 1e-12 * sv[0], `σ_${i}: ${r.singularValues[i]} vs ${sv[i]}`);
      assert.ok(Math.abs(r.norm - frobenius(ref)) <= 1e-13 * frobenius(ref));
    });
  }

  test('dependent stacked columns: the exact rank is the rank of the sum, not the inner size', () => {
    const rng = createRng(7);
    const base = factoredTerm(30, 20, 4, rng);
    // The same update split in two halves plus a rank-2 term: rank 6, inner size 10.
    const half: UpdateTerm = { ...base, scale: 0.5 } as UpdateTerm;
    const terms = [half, half, factoredTerm(30, 20, 2, rng)];
    const r = refactorLowRank(terms, 30, 20);
    assert.equal(r.innerDim, 10);
    assert.equal(r.exactRank, 6);
    const ref = dense64(terms, 30, 20);
    assert.ok(frobeniusDiff(product(r.b, r.a), ref) <= 1e-13 * frobenius(ref));
  });

  test('ill-conditioned factors with cancellation (terms equal to 1e-9, ‖P‖‖Q‖ ≈ 1e9·‖ΔW‖): error within 1e-14·Σ‖s_j P_j‖‖Q_j‖, as good as forming ΔW densely', () => {
    const rng = createRng(11);
    const out = 60;
    const inF = 45;
    const p64 = Float64Array.from(randomMatrix(out, 6, rng).data);
    const q64 = Float64Array.from(randomMatrix(6, inF, rng).data);
    // Client-like: the second term is the first one perturbed by 1e-9, and subtracted.
    const pert = Float64Array.from(p64, (v) => v + 1e-9 * rng.gaussian());
    const qert = Float64Array.from(q64, (v) => v + 1e-9 * rng.gaussian());
    const terms: UpdateTerm[] = [
      { kind: 'factored', p: { shape: [out, 6], data: p64 }, q: { shape: [6, inF], data: q64 }, scale: 1 },
      { kind: 'factored', p: { shape: [out, 6], data: pert }, q: { shape: [6, inF], data: qert }, scale: -1 },
    ];
    const ref = dense64(terms, out, inF);
    const sizes = frobenius(p64) * frobenius(q64) + frobenius(pert) * frobenius(qert);
    assert.ok(frobenius(ref) < 1e-7 * sizes, 'the case has heavy cancellation');
    const r = refactorLowRank(terms, out, inF);
    const err = frobeniusDiff(product(r.b, r.a), ref);
    assert.ok(err <= 1e-14 * sizes, `error ${err} against Σ‖P‖‖Q‖ = ${sizes}`);
    assert.ok(r.exactRank <= 12);
    // The singular values agree with a Jacobi SVD of the dense sum to the accuracy the dense sum itself has.
    const sv = jacobiSingularValues(ref, out, inF);
    assert.ok(Math.abs(r.singularValues[0] - sv[0]) <= 1e-14 * sizes);
  });

  test("Q rows nearly dependent across terms (κ(R_q) ≈ 1e6, A through Q_q's reflectors) and well conditioned (A through R_q⁻¹): exact B·A (≤ 1e-13 relative)", () => {
    for (const eps of [1e-6, 0.5]) {
      const rng = createRng(23);
      const out = 50;
      const inF = 40;
      const t1 = factoredTerm(out, inF, 5, rng);
      // The second term's Q: the first one's rows plus eps times noise (so R_q of the stack has σ_min ~ eps).
      const q2 = Float64Array.from(t1.kind === 'factored' ? t1.q.data : [], (v) => v + eps * rng.gaussian());
      const t2: UpdateTerm = { kind: 'factored', p: randomMatrix(out, 5, rng), q: { shape: [5, inF], data: q2 }, scale: 0.7 };
      const terms = [t1, t2];
      const ref = dense64(terms, out, inF);
      const r = refactorLowRank(terms, out, inF);
      assert.equal(r.exactRank, 10);
      assert.ok(frobeniusDiff(product(r.b, r.a), ref) <= 1e-13 * frobenius(ref), `eps ${eps}: ${frobeniusDiff(product(r.b, r.a), ref)} of ${frobenius(ref)}`);
      const sv = jacobiSingularValues(ref, out, inF);
      for (let i = 0; i < 10; i++) assert.ok(Math.abs(r.singularValues[i] - sv[i]) <= 1e-12 * sv[0], `eps ${eps}, σ_${i}: ${r.singularValues[i]} vs ${sv[i]}`);
    }
  });

  test('a dense term joins the stack (both orientations)', () => {
    for (const [out, inF] of [[14, 9], [9, 14]] as const) {
      const rng = createRng(out);
      const d = randomMatrix(out, inF, rng);
      const terms: UpdateTerm[] = [factoredTerm(out, inF, 3, rng, 2), { kind: 'dense', d, scale: 0.3 }];
      const ref = dense64(terms, out, inF);
      const r = refactorLowRank(terms, out, inF);
      assert.equal(r.exactRank, Math.min(out, inF));
      assert.ok(frobeniusDiff(product(r.b, r.a), ref) <= 1e-13 * frobenius(ref));
    }
  });

  test('truncation: --max-rank keeps the top directions and reports exactly what a float64 recomputation loses', () => {
    const rng = createRng(5);
    const terms = [factoredTerm(40, 33, 8, rng), factoredTerm(40, 33, 8, rng, -0.7)];
    const ref = dense64(terms, 40, 33);
    const sv = jacobiSingularValues(ref, 40, 33);
    for (const k of [1, 5, 12]) {
      const r = refactorLowRank(terms, 40, 33, { maxRank: k });
      assert.equal(r.rank, k);
      const lost = frobeniusDiff(product(r.b, r.a), ref);
      const eckartYoung = Math.sqrt(sv.slice(k).reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(r.truncationError - lost) <= 1e-12 * frobenius(ref), `reported ${r.truncationError}, measured ${lost}`);
      assert.ok(Math.abs(r.truncationError - eckartYoung) <= 1e-12 * frobenius(ref), `reported ${r.truncationError}, optimal ${eckartYoung}`);
      assert.ok(Math.abs(r.relativeError - lost / frobenius(ref)) <= 1e-12);
    }
  });

  test('maxRelativeError picks the smallest rank within the budget', () => {
    const rng = createRng(9);
    // Singular values 10, 1, 0.1, 0.01 (orthogonal directions), so the budget decides cleanly.
    const u = householderBasis(20, 4, rng);
    const v = householderBasis(16, 4, rng);
    const s = [10, 1, 0.1, 0.01];
    const p = new Float64Array(20 * 4);
    for (let i = 0; i < 20; i++) for (let c = 0; c < 4; c++) p[i * 4 + c] = u[c * 20 + i] * s[c];
    const q = new Float64Array(4 * 16);
    for (let c = 0; c < 4; c++) for (let j = 0; j < 16; j++) q[c * 16 + j] = v[c * 16 + j];
    const terms: UpdateTerm[] = [{ kind: 'factored', p: { shape: [20, 4], data: p }, q: { shape: [4, 16], data: q }, scale: 1 }];
    const norm = Math.hypot(...s);
    assert.equal(refactorLowRank(terms, 20, 16, { maxRelativeError: 0.009 / norm }).rank, 4);
    assert.equal(refactorLowRank(terms, 20, 16, { maxRelativeError: 0.011 / norm }).rank, 3);
    assert.equal(refactorLowRank(terms, 20, 16, { maxRelativeError: 1.1 / norm }).rank, 1);
    assert.equal(refactorLowRank(terms, 20, 16, { maxRelativeError: 0.2 / norm }).rank, 2);
    assert.equal(refactorLowRank(terms, 20, 16, { maxRelativeError: 0.05 / norm }).rank, 3);
    assert.equal(refactorLowRank(terms, 20, 16, { maxRelativeError: 0.2 / norm, maxRank: 1 }).rank, 1);
  });

  test('a stacked FedEx residual (float32 Ā): (k − 1)·r directions carry it, the float32-rounding ones are tiny and dropped where below the resolution', () => {
    const s = spec('m', 70, 50, 4, 'linear');
    const clients = randomClients(s, 3, createRng(21));
    const w = [0.2, 0.3, 0.5];
    const abar = weightedAverage(clients.map((c) => c.a), w);
    const res = factorResidual(clients, w, abar, 'stacked');
    const terms: UpdateTerm[] = [{ kind: 'factored', p: res.p, q: res.q, scale: 1 }];
    const r = refactorLowRank(terms, 70, 50);
    assert.equal(r.innerDim, 12);
    // The r near-zero combinations of Q's rows are taken out before the factorization (lowRank/compact.ts).
    assert.equal(r.coreDim, 8);
    // Σ w_i (A_i − Ā) = 0 up to the float32 rounding of Ā: (k − 1)·r directions carry the update, the
    // other r are rounding, kept only where they clear the resolution.
    assert.ok(r.singularValues[7] > 1e-3 * r.singularValues[0]);
    assert.ok(r.singularValues[8] < 1e-6 * r.singularValues[0], `σ_9/σ_1 = ${r.singularValues[8] / r.singularValues[0]}`);
    assert.ok(r.exactRank >= 8 && r.exactRank <= 12);
    assert.ok(r.relativeError < 1e-7, `${r.relativeError}`);
    const ref = dense64(terms, 70, 50);
    assert.ok(Math.abs(frobeniusDiff(product(r.b, r.a), ref) - r.truncationError) <= 1e-12 * frobenius(ref));
  });

  // Each side through its Gram matrix (PᵀP; Q·Qᵀ and its Cholesky factor: lowRank.ts gramCore,
  // choleskySide) where its error bound allows, else its QR. Stated tolerance for every route, with S = max(‖ΔW‖_F, Σ_j |s_j|·‖P_j‖_F‖Q_j‖_F) (S > ‖ΔW‖ under
  // cancellation, which no float64 method resolves below ε·S): ‖ΔW − B·A‖_F within 1e-13·S plus the
  // reported truncation error (directions below the rank floor), the kept σ as a Jacobi SVD of the dense
  // float64 sum to 1e-12·S, and every σ_i within 2⁻¹⁷·σ_i per side taken through its Gram (the guards' bounds).
  function checkRoute(terms: UpdateTerm[], out: number, inF: number, what: string): CoreRoute {
    const ref = dense64(terms, out, inF);
    const sizes = terms.reduce((sum, t) => sum + (t.kind === 'factored' ? Math.abs(t.scale) * frobenius(Float64Array.from(t.p.data)) * frobenius(Float64Array.from(t.q.data)) : 0), 0);
    const scale = Math.max(frobenius(ref), sizes);
    const r = refactorLowRank(terms, out, inF);
    const err = frobeniusDiff(product(r.b, r.a), ref);
    assert.ok(err <= 1e-13 * scale + r.truncationError, `${what} (${JSON.stringify(r.coreRoute)}): ${err} of ${frobenius(ref)}, truncation ${r.truncationError}`);
    const sv = jacobiSingularValues(ref, out, inF);
    for (let i = 0; i < r.rank; i++) {
      const e = Math.abs(r.singularValues[i] - sv[i]);
      assert.ok(e <= 1e-12 * scale, `${what} (${JSON.stringify(r.coreRoute)}), σ_${i}: ${r.singularValues[i]} vs ${sv[i]}`);
      const sides = (r.coreRoute.p === 'gram' ? 1 : 0) + (r.coreRoute.q === 'gram' ? 1 : 0);
      assert.ok(e <= sides * 2 ** -17 * sv[i] || sides === 0, `${what}: σ_${i} off by ${e / sv[i]} (relative)`);
    }
    return r.coreRoute;
  }

  test("P's Gram route: taken on well-conditioned stacks, not where P's columns are nearly dependent (the guard switches as δ shrinks)", () => {
    const out = 80;
    const inF = 60;
    const routes: CoreRoute[] = [];
    for (const delta of [1, 1e-2, 1e-4, 1e-6, 1e-9]) {
      const rng = createRng(31);
      // Two terms whose P columns differ by δ·noise and whose Q rows are independent: σ_min(ΔW) ~ δ.
      const p1 = randomMatrix(out, 6, rng);
      const p2 = Float64Array.from(p1.data, (v) => v + delta * rng.gaussian());
      const terms: UpdateTerm[] = [
        { kind: 'factored', p: p1, q: randomMatrix(6, inF, rng), scale: 1 },
        { kind: 'factored', p: { shape: [out, 6], data: p2 }, q: randomMatrix(6, inF, rng), scale: 0.8 },
      ];
      routes.push(checkRoute(terms, out, inF, `δ = ${delta}`));
    }
    assert.deepEqual(routes[0], { p: 'gram', q: 'gram' });
    // Q's rows stay independent: its Cholesky route with P's QR (C = R_p·Rᵀ).
    assert.deepEqual(routes[routes.length - 1], { p: 'qr', q: 'gram' });
  });

  test("Q's Cholesky route: taken on well-conditioned rows, not where Q's rows are nearly dependent (κ(R) ≈ 1/ε)", () => {
    const out = 70;
    const inF = 60;
    const routes: CoreRoute[] = [];
    for (const eps of [0.5, 1e-2, 1e-4, 1e-7]) {
      const rng = createRng(41);
      const t1 = factoredTerm(out, inF, 6, rng);
      // The second term's Q rows: the first one's plus eps times noise (σ_min(R) ~ eps).
      const q2 = Float64Array.from(t1.kind === 'factored' ? t1.q.data : [], (v) => v + eps * rng.gaussian());
      const terms: UpdateTerm[] = [t1, { kind: 'factored', p: randomMatrix(out, 6, rng), q: { shape: [6, inF], data: q2 }, scale: 0.7 }];
      routes.push(checkRoute(terms, out, inF, `eps = ${eps}`));
    }
    assert.equal(routes[0].q, 'gram');
    assert.equal(routes[routes.length - 1].q, 'qr');
    // Q's rows over a huge dynamic range (scaled 1 … 1e-9, κ(R) ≈ 1e9): the QR, same tolerances.
    const rng = createRng(43);
    const q = randomMatrix(10, inF, rng);
    for (let i = 0; i < 10; i++) for (let j = 0; j < inF; j++) q.data[i * inF + j] *= 10 ** -i;
    const graded: UpdateTerm[] = [{ kind: 'factored', p: randomMatrix(out, 10, rng), q, scale: 1 }];
    assert.equal(checkRoute(graded, out, inF, 'Q rows 1 … 1e-9').q, 'qr');
  });

  test("P's Gram route: refused under heavy cancellation (‖P‖‖Q‖ ≫ ‖ΔW‖) and huge dynamic range (σ over 1e-10 … 1)", () => {
    const rng = createRng(37);
    const out = 50;
    const inF = 70;
    // Cancellation: P·Q − (P + 1e-7·E)·Q, so ‖ΔW‖ ≈ 1e-7·‖P‖‖Q‖.
    const p = randomMatrix(out, 5, rng);
    const q = randomMatrix(5, inF, rng);
    const pe = Float64Array.from(p.data, (v) => v + 1e-7 * rng.gaussian());
    const cancel: UpdateTerm[] = [{ kind: 'factored', p, q, scale: 1 }, { kind: 'factored', p: { shape: [out, 5], data: pe }, q, scale: -1 }];
    assert.equal(checkRoute(cancel, out, inF, 'cancellation').p, 'qr');
    const graded: UpdateTerm[] = [1, 1e-5, 1e-10].map((s) => factoredTerm(out, inF, 4, rng, s));
    assert.equal(checkRoute(graded, out, inF, 'dynamic range 1e-10').p, 'qr');
    // A moderate range (1e-2) still takes the Gram route, within the same tolerances.
    const moderate: UpdateTerm[] = [1, 1e-1, 1e-2].map((s) => factoredTerm(out, inF, 4, rng, s));
    assert.deepEqual(checkRoute(moderate, out, inF, 'dynamic range 1e-2'), { p: 'gram', q: 'gram' });
  });

  test('zero update and no terms give rank 0', () => {
    const z: UpdateTerm = { kind: 'factored', p: { shape: [5, 2], data: new Float32Array(10) }, q: { shape: [2, 3], data: new Float32Array(6) }, scale: 1 };
    for (const terms of [[z], []]) {
      const r = refactorLowRank(terms, 5, 3);
      assert.equal(r.rank, 0);
      assert.equal(r.norm, 0);
      assert.deepEqual(r.b.shape, [5, 0]);
      assert.deepEqual(r.a.shape, [0, 3]);
    }
  });

  test('a term of the wrong shape is refused naming it', () => {
    const rng = createRng(1);
    assert.throws(() => refactorLowRank([factoredTerm(5, 4, 2, rng), factoredTerm(5, 3, 2, rng)], 5, 4), /term 1 has P 5×2 and Q 2×3, expected 5×k and k×4/);
  });
});

/** k orthonormal vectors of length n (columns, column-major) from a QR of a random matrix. */
function householderBasis(n: number, k: number, rng: Rng): Float64Array {
  const x = Float64Array.from({ length: n * k }, () => rng.gaussian());
  const qrx = householderQR(x, n, k);
  const q = new Float64Array(n * k);
  for (let c = 0; c < k; c++) q[c * n + c] = 1;
  applyHouseholderQ(qrx, q, k);
  return q;
}
