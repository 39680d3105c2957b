// The onnxruntime float64 Gemm backend against the TypeScript products (every transposition, odd
// shapes, views at an offset), and the re-factoring through it against the TypeScript one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refactorLowRank, refactorLowRankWith, typeScriptGemm, type GemmRequest, type UpdateTerm } from '../../../src/core/lowRank.js';
import { createRng, randomMatrix } from '../../../src/core/random.js';
import { createOrtGemmBackend } from '../../../src/runtime/kernels/gemm64.js';

test('onnxruntime float64 Gemm equals the TypeScript product for every transposition (≤ 1e-13 relative)', async () => {
  const backend = createOrtGemmBackend();
  try {
    const rng = createRng(1);
    for (const [m, n, k] of [[7, 5, 3], [33, 1, 17], [1, 40, 9], [64, 70, 65]] as const) {
      for (const transA of [false, true]) {
        for (const [transB, subtract] of [[false, false], [true, false], [false, true], [true, true]] as const) {
          // A view at an offset, as the blocked QR passes its trailing columns.
          const aBuf = Float64Array.from({ length: m * k + 5 }, () => rng.gaussian());
          const a = aBuf.subarray(5);
          const b = Float64Array.from({ length: k * n }, () => rng.gaussian());
          const start = Float64Array.from({ length: m * n }, () => rng.gaussian());
          const mine = start.slice();
          const ref = start.slice();
          const req = (out: Float64Array): GemmRequest => ({ transA, transB, m, n, k, a, b, out, subtract });
          await backend.gemm(req(mine));
          typeScriptGemm(req(ref));
          let err = 0;
          let size = 0;
          for (let i = 0; i < ref.length; i++) {
            err = Math.max(err, Math.abs(mine[i] - ref[i]));
            size = Math.max(size, Math.abs(ref[i]));
          }
          assert.ok(err <= 1e-13 * size * k, `${m}×${n}×${k} transA=${transA} transB=${transB} subtract=${subtract}: ${err}`);
        }
      }
    }
    await assert.rejects(backend.gemm({ transA: false, transB: false, m: 2, n: 2, k: 2, a: new Float64Array(3), b: new Float64Array(4), out: new Float64Array(4) }), /gemm64: A has 3 values/);
  } finally {
    await backend.dispose?.();
  }
});

test('refactorLowRankWith(onnxruntime) gives the TypeScript factorization (both orientations)', async () => {
  const backend = createOrtGemmBackend();
  try {
    for (const [out, inF] of [[90, 70], [60, 130]] as const) {
      const rng = createRng(out);
      const terms: UpdateTerm[] = [5, 40, 8].map((k, j) => ({ kind: 'factored', p: randomMatrix(out, k, rng), q: randomMatrix(k, inF, rng), scale: j === 1 ? -0.5 : 1 }));
      const ts = refactorLowRank(terms, out, inF);
      const ort = await refactorLowRankWith(backend, terms, out, inF);
      assert.equal(ort.rank, ts.rank);
      for (let i = 0; i < ts.rank; i++) assert.ok(Math.abs(ort.singularValues[i] - ts.singularValues[i]) <= 1e-12 * ts.singularValues[0]);
      // B·A agree (the factors themselves may differ by the sign of a direction).
      const ba = (r: typeof ts): Float64Array => {
        const x = new Float64Array(out * inF);
        typeScriptGemm({ transA: false, transB: false, m: out, n: inF, k: r.rank, a: r.b.data, b: r.a.data, out: x });
        return x;
      };
      const x = ba(ts);
      const y = ba(ort);
      let err = 0;
      let size = 0;
      for (let i = 0; i < x.length; i++) {
        err = Math.max(err, Math.abs(x[i] - y[i]));
        size = Math.max(size, Math.abs(x[i]));
      }
      assert.ok(err <= 1e-12 * size, `${out}×${inF}: ${err}`);
    }
  } finally {
    await backend.dispose?.();
  }
});
