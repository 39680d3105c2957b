import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { factorResidual, factoredBytes, isZeroResidual, preferFactored, residualInnerDim, residualRankBound } from '../../src/core/residual.js';
import { weightedAverage } from '../../src/core/average.js';
import type { LoraFactors } from '../../src/core/lora.js';
import { createRng } from '../../src/core/random.js';
import { frobenius, maxAbs, maxAbsDiff, numericalRank, randomClients, refMatmul, spec } from './reference.js';
import { denseResidual } from './residualReference.js';

function averages(clients: readonly LoraFactors[], w: ArrayLike<number>) {
  return { abar: weightedAverage(clients.map((c) => c.a), w), bbar: weightedAverage(clients.map((c) => c.b), w) };
}

describe('factored residual ΔR = P·Q', () => {
  for (const form of ['stacked', 'compact'] as const) {
    for (const [k, out, inF, r, w] of [
      [2, 9, 13, 3, [0.5, 0.5]],
      [3, 16, 11, 2, [0.2, 0.3, 0.5]],
      [5, 7, 7, 2, [0.1, 0.2, 0.3, 0.15, 0.25]],
    ] as const) {
      test(`${form}: P·Q equals the dense float64 residual (k=${k}, ${out}×${inF}, r=${r})`, () => {
        const clients = randomClients(spec('m', out, inF, r, 'linear'), k, createRng(k * 10 + out));
        const { abar, bbar } = averages(clients, w);
        const res = factorResidual(clients, w, abar, form);
        const fromFactors = refMatmul(res.p, res.q);
        const dense = denseResidual(clients, w, abar, bbar);

        assert.deepEqual(res.p.shape, [out, residualInnerDim(k, r, form)]);
        assert.deepEqual(res.q.shape, [residualInnerDim(k, r, form), inF]);
        // Both differ from the definition only by float32 rounding of P, Q, Ā and B̄ (≈ 1e-7 relative).
        assert.ok(maxAbsDiff(fromFactors, dense.data) <= 1e-5 * maxAbs(dense.data), `${maxAbsDiff(fromFactors, dense.data)} vs ${maxAbs(dense.data)}`);
        assert.ok(frobenius(dense.data) > 0.1, 'non-trivial residual');
      });
    }
  }

  test('the residual has rank min((k−1)·r, out, in): numerical rank of the dense residual', () => {
    const cases: [number, number, number, number][] = [[2, 10, 12, 3], [3, 10, 12, 3], [4, 10, 12, 3], [6, 8, 20, 2], [3, 30, 6, 4]];
    for (const [k, out, inF, r] of cases) {
      const clients = randomClients(spec('m', out, inF, r, 'linear'), k, createRng(out + inF + k));
      const w = Array(k).fill(1 / k);
      const { abar, bbar } = averages(clients, w);
      const dense = denseResidual(clients, w, abar, bbar);
      const rank = numericalRank(dense.data, out, inF, 1e-6);

      assert.equal(rank, residualRankBound(k, r, out, inF), `k=${k} ${out}×${inF} r=${r}`);
      assert.ok(rank <= (k - 1) * r);
    }
  });

  test('k = 1 gives an exactly zero residual', () => {
    const clients = randomClients(spec('m', 6, 5, 2, 'linear'), 1, createRng(4));
    const { abar, bbar } = averages(clients, [1]);
    const stacked = factorResidual(clients, [1], abar, 'stacked');
    const compact = factorResidual(clients, [1], abar, 'compact');

    assert.ok(stacked.q.data.every((v) => v === 0));
    assert.ok(isZeroResidual(stacked) && isZeroResidual(compact));
    assert.equal(compact.p.shape[1], 0);
    // The dense reference subtracts B̄Ā from Σ w_i B_i A_i in float64: zero up to its own round-off.
    assert.ok(maxAbs(denseResidual(clients, [1], abar, bbar).data) < 1e-15);
    assert.equal(residualRankBound(1, 2, 6, 5), 0);
  });

  test('zero-weight clients are left out of the factors', () => {
    const clients = randomClients(spec('m', 6, 5, 2, 'linear'), 3, createRng(8));
    const w = [0.5, 0, 0.5];
    const { abar, bbar } = averages(clients, w);
    const res = factorResidual(clients, w, abar);

    assert.equal(res.contributors, 2);
    assert.equal(res.p.shape[1], 4);
    assert.ok(maxAbsDiff(refMatmul(res.p, res.q), denseResidual(clients, w, abar, bbar).data) < 1e-6);
  });

  test('factored vs dense bytes decide what to send', () => {
    assert.equal(factoredBytes(4096, 4096, 48), 48 * 8192 * 4);
    assert.equal(preferFactored(4096, 4096, 3, 16), true);
    assert.equal(preferFactored(64, 64, 3, 16), false);
    assert.equal(preferFactored(64, 64, 3, 16, 'compact'), false);
    assert.equal(preferFactored(100, 100, 3, 16), true);
    assert.equal(preferFactored(90, 90, 3, 16, 'compact'), true);
    assert.equal(preferFactored(90, 90, 3, 16, 'stacked'), false);
  });
});
