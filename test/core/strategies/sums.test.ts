// The streaming accumulator of the mean-based strategies (core/strategies/sums.ts): uploads summed
// as they arrive give FedEx's base update as a dense D = s·(Σ w_i B_i A_i − B̄Ā) and FedIT's
// deviation as the same D, against a float64 reference; the factors and weights are those of the
// strategy's own aggregate, bit for bit.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { createRng } from '../../../src/core/random.js';
import { specScaling } from '../../../src/core/lora.js';
import { createStrategy } from '../../../src/core/strategies/registry.js';
import { dense, maxAbs, maxAbsDiff, randomClients, refMatmul, spec } from '../reference.js';

describe('streaming accumulators', () => {
  for (const layout of ['linear', 'conv1d'] as const) {
    test(`${layout}: FedEx folds the dense s·ΔR from the sums and FedIT reports it; same factors as aggregate (weights by examples)`, async () => {
      const s = spec('model.layers.0.mlp.down_proj', 12, 9, 2, layout, 8);
      const clients = randomClients(s, 4, createRng(3));
      const results = clients.map((factors, client) => ({ client, factors, numExamples: 10 * (client + 1) }));
      const w = results.map((r) => r.numExamples / 100);
      // s·(Σ w_i B_i A_i − B̄Ā) in float64, out × in whatever the layout.
      const scale = specScaling(s);
      for (const name of ['fedex', 'fedit'] as const) {
        const strategy = createStrategy(name, { weighting: 'examples', deviationMetrics: false });
        const acc = strategy.accumulator!(s, createTypeScriptBackend());
        for (const r of results) await acc.add(r.factors, r.numExamples);
        const summed = await acc.finish(1, { spec: s, factors: null }, results, []);
        const plain = strategy.aggregate(1, { spec: s, factors: null }, results, [])!;
        assert.ok(summed !== null);
        assert.deepEqual(summed.global.factors, plain.global.factors, `${name}: the same Ā, B̄`);
        assert.deepEqual(summed.metrics.weights, plain.metrics.weights);
        const abar = summed.global.factors!.a;
        const bbar = summed.global.factors!.b;
        const ref = new Float64Array(s.outFeatures * s.inFeatures);
        clients.forEach((c, i) => refMatmul(c.b, c.a).forEach((v, x) => (ref[x] += scale * w[i] * v)));
        refMatmul(bbar, abar).forEach((v, x) => (ref[x] -= scale * v));
        const d = name === 'fedex' ? dense(summed.baseUpdate) : { d: summed.deviation!, layout, scale: 1 };
        if (name === 'fedex') assert.equal(dense(summed.baseUpdate).layout, layout);
        else assert.equal(summed.baseUpdate, null, 'FedIT leaves the base alone');
        assert.deepEqual(d.d.shape, [s.outFeatures, s.inFeatures]);
        assert.ok(maxAbsDiff(d.d.data, ref) <= 1e-5 * maxAbs(ref), `${name}: ${maxAbsDiff(d.d.data, ref)} vs ${maxAbs(ref)}`);
        assert.equal(summed.metrics.exact, name === 'fedex');
      }
    });
  }

  test('strategies that are not linear in the uploads offer no accumulator', () => {
    assert.equal(createStrategy('ffa').accumulator, undefined);
    assert.equal(createStrategy('fedex', { residualRank: 2 }).accumulator, undefined);
    assert.equal(createStrategy('fedex', { aggregation: { name: 'median' } }).accumulator, undefined);
  });
});
