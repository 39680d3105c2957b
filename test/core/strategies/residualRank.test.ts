// FedEx with each round's residual truncated to rank k (the paper's "best inexact" variant): the
// folded update is the best rank-k approximation of ΔR and the reported share dropped is what a
// float64 recomputation measures.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createFedEx } from '../../../src/core/strategies/fedex.js';
import type { ClientModuleResult } from '../../../src/core/strategies/types.js';
import { createRng } from '../../../src/core/random.js';
import { weightedAverage } from '../../../src/core/average.js';
import { frobenius, frobeniusDiff, randomClients, refMatmul, spec, factored } from '../reference.js';

describe('FedEx --residual-rank', () => {
  for (const layout of ['linear', 'conv1d'] as const) {
    test(`${layout}: the base update has inner size k and drops exactly the reported share of ‖ΔR‖ (float64 check)`, () => {
      const s = spec('m', 40, 27, 4, layout);
      const clients = randomClients(s, 4, createRng(3));
      const results: ClientModuleResult[] = clients.map((factors, client) => ({ client, factors }));
      const exact = createFedEx().aggregate(1, { spec: s, factors: null }, results, [])!;
      const cut = createFedEx({ residualRank: 3 }).aggregate(1, { spec: s, factors: null }, results, [])!;
      assert.equal(exact.metrics.exact, true);
      assert.equal(cut.metrics.exact, false);
      assert.deepEqual(factored(cut.baseUpdate).p.shape, [40, 3]);
      assert.deepEqual(factored(cut.baseUpdate).q.shape, [3, 27]);
      assert.deepEqual(cut.global.factors, exact.global.factors, 'the global adapter is the same average');
      // ΔR in float64 from the definition Σ w_i B_i A_i − B̄Ā.
      const w = [0.25, 0.25, 0.25, 0.25];
      const abar = weightedAverage(clients.map((c) => c.a), w);
      const bbar = weightedAverage(clients.map((c) => c.b), w);
      const dr = new Float64Array(40 * 27);
      clients.forEach((c) => refMatmul(c.b, c.a).forEach((v, i) => (dr[i] += 0.25 * v)));
      refMatmul(bbar, abar).forEach((v, i) => (dr[i] -= v));
      const kept = refMatmul(factored(cut.baseUpdate).p, factored(cut.baseUpdate).q);
      const measured = frobeniusDiff(kept, dr) / frobenius(dr);
      const t = cut.metrics.residualTruncation!;
      assert.equal(t.rank, 3);
      assert.ok(t.exactRank >= 12, `exact rank ${t.exactRank}`);
      assert.ok(Math.abs(t.relativeError - measured) <= 1e-5, `reported ${t.relativeError}, measured ${measured}`);
      assert.ok(t.relativeError > 0.1 && t.relativeError < 1);
    });
  }

  test("a rank at least the residual's inner size changes nothing", () => {
    const s = spec('m', 20, 16, 2, 'linear');
    const results: ClientModuleResult[] = randomClients(s, 3, createRng(5)).map((factors, client) => ({ client, factors }));
    const exact = createFedEx().aggregate(1, { spec: s, factors: null }, results, [])!;
    const wide = createFedEx({ residualRank: 6 }).aggregate(1, { spec: s, factors: null }, results, [])!;
    assert.deepEqual(wide.baseUpdate, exact.baseUpdate);
    assert.equal(wide.metrics.residualTruncation, undefined);
    assert.equal(wide.metrics.exact, true);
  });

  test('a bad rank is refused', () => {
    assert.throws(() => createFedEx({ residualRank: 0 }), /residualRank must be an integer ≥ 1, got 0/);
    assert.throws(() => createFedEx({ residualRank: 1.5 }), /residualRank must be an integer ≥ 1, got 1.5/);
  });
});
