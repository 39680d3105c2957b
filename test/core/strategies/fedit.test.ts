import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createFedIt } from '../../../src/core/strategies/fedit.js';
import { createRng } from '../../../src/core/random.js';
import { randomClients, spec } from '../reference.js';

describe('FedIT (FedAvg of A and B)', () => {
  test('averages A and B with the weights, leaves the base alone and reports a non-zero deviation', () => {
    const s = spec('model.layers.4.mlp.up_proj', 5, 3, 2, 'linear');
    const clients = randomClients(s, 2, createRng(12));
    const agg = createFedIt({ weighting: 'examples' }).aggregate(3, { spec: s, factors: null }, [{ client: 0, factors: clients[0], numExamples: 30 }, { client: 1, factors: clients[1], numExamples: 10 }], []);

    assert.ok(agg !== null);
    for (let i = 0; i < 6; i++) assert.ok(Math.abs(agg.global.factors!.a.data[i] - (0.75 * clients[0].a.data[i] + 0.25 * clients[1].a.data[i])) < 1e-7);
    for (let i = 0; i < 10; i++) assert.ok(Math.abs(agg.global.factors!.b.data[i] - (0.75 * clients[0].b.data[i] + 0.25 * clients[1].b.data[i])) < 1e-7);
    assert.equal(agg.baseUpdate, null);
    assert.deepEqual(agg.metrics.weights, [0.75, 0.25]);
    assert.equal(agg.metrics.exact, false);
    assert.equal(agg.metrics.round, 3);
    assert.equal(agg.metrics.moduleType, 'mlp');
    assert.equal(agg.metrics.layer, 4);
    assert.ok(agg.metrics.relativeDeviation > 0.01);
  });

  test('deviation metrics can be switched off (NaN)', () => {
    const s = spec('m', 4, 4, 1, 'linear');
    const agg = createFedIt({ deviationMetrics: false }).aggregate(1, { spec: s, factors: null }, randomClients(s, 2, createRng(1)).map((factors, client) => ({ client, factors })), []);
    assert.ok(Number.isNaN(agg?.metrics.deviationNorm));
  });

  test('weight errors name the strategy and module', () => {
    const s = spec('model.layers.0.self_attn.q_proj', 4, 4, 1, 'linear');
    const rs = randomClients(s, 2, createRng(1)).map((factors, client) => ({ client, factors, weight: client === 0 ? -1 : 1 }));
    assert.throws(() => createFedIt({ weighting: 'explicit' }).aggregate(1, { spec: s, factors: null }, rs, []), /fedit: module 'model\.layers\.0\.self_attn\.q_proj': explicit weights: client 0 has a negative weight -1/);
    assert.equal(createFedIt().aggregate(1, { spec: s, factors: null }, [], []), null);
  });
});
