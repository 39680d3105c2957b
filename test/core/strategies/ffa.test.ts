import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createFfa } from '../../../src/core/strategies/ffa.js';
import { specScaling } from '../../../src/core/lora.js';
import { createRng, kaimingUniform, randomMatrix } from '../../../src/core/random.js';
import { maxAbs, maxAbsDiff, randomBase, refEffectiveWeight, refIdealWeight, spec } from '../reference.js';

describe('FFA-LoRA (A frozen, B averaged)', () => {
  const s = spec('transformer.h.0.mlp.c_fc', 10, 6, 3, 'conv1d', 6);
  const rng = createRng(31);
  const a = kaimingUniform(3, 6, rng);
  const clients = [0, 1, 2].map(() => ({ a: { shape: a.shape, data: Float32Array.from(a.data) }, b: randomMatrix(10, 3, rng, 0.2) }));

  test('is exact with the shared A and leaves the base unchanged', () => {
    const w0 = randomBase(s, rng);
    const agg = createFfa({ weighting: 'explicit' }).aggregate(1, { spec: s, factors: { a, b: randomMatrix(10, 3, rng) } }, clients.map((factors, client) => ({ client, factors, weight: [1, 2, 5][client] })), []);
    assert.ok(agg !== null);
    const ideal = refIdealWeight(w0, clients, agg.metrics.weights, specScaling(s), 'conv1d');
    const effective = refEffectiveWeight(w0, agg.global.factors!, specScaling(s), 'conv1d');
    const update = maxAbs(ideal.map((v, i) => v - w0.data[i]));

    assert.equal(agg.baseUpdate, null);
    assert.deepEqual(agg.global.factors!.a.data, a.data);
    assert.ok(maxAbsDiff(effective, ideal) <= 1e-5 * update + 1e-6 * maxAbs(w0.data));
    assert.ok(agg.metrics.relativeDeviation < 1e-6);
  });

  test('refuses clients whose A differ, naming the client and the first differing entry', () => {
    const moved = { a: { shape: a.shape, data: Float32Array.from(a.data) }, b: clients[2].b };
    moved.a.data[8] += 1e-7;
    const results = [{ client: 0, factors: clients[0] }, { client: 1, clientId: 'carol', factors: moved }];
    assert.throws(
      () => createFfa().aggregate(1, { spec: s, factors: null }, results, []),
      /ffa: module 'transformer\.h\.0\.mlp\.c_fc': client 1 \('carol'\)'s lora_A differs from client 0's at \[1, 2\]/,
    );
  });

  test('refuses A that differs from the global A even when the clients agree', () => {
    const other = kaimingUniform(3, 6, createRng(99));
    assert.throws(() => createFfa().aggregate(1, { spec: s, factors: { a: other, b: clients[0].b } }, clients.map((factors, client) => ({ client, factors })), []), /differs from the global adapter's/);
  });

  test('an empty round is nothing usable', () => {
    assert.equal(createFfa().aggregate(1, { spec: s, factors: null }, [], []), null);
  });
});
