import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createFedEx } from '../../../src/core/strategies/fedex.js';
import { createFedIt } from '../../../src/core/strategies/fedit.js';
import type { ClientModuleResult } from '../../../src/core/strategies/types.js';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { specScaling } from '../../../src/core/lora.js';
import type { Layout, LoraFactors, LoraModuleSpec } from '../../../src/core/lora.js';
import { createRng } from '../../../src/core/random.js';
import { frobeniusDiff, maxAbs, maxAbsDiff, randomBase, randomClients, refEffectiveWeight, refIdealWeight, spec, factored } from '../reference.js';

// Tolerance of the exactness property (docs/math.md §1): float32 round-off relative to the update,
// plus the rounding of W0' itself: maxAbsErr ≤ 1e-5·max|s·Σ w_i B_i A_i| + 1e-6·max|W0|.
const REL_TOL = 1e-5;
const BASE_TOL = 1e-6;

function results(clients: readonly LoraFactors[], raw?: readonly number[]): ClientModuleResult[] {
  return clients.map((factors, client) => ({ client, factors, ...(raw === undefined ? {} : { weight: raw[client] }) }));
}

async function fedexRound(s: LoraModuleSpec, k: number, raw: readonly number[] | undefined, seed: number) {
  const rng = createRng(seed);
  const clients = randomClients(s, k, rng);
  const w0 = randomBase(s, rng);
  const strategy = createFedEx(raw === undefined ? {} : { weighting: 'explicit' });
  const agg = strategy.aggregate(1, { spec: s, factors: null }, results(clients, raw), []);
  assert.ok(agg !== null);
  const w0New = { shape: w0.shape, data: Float32Array.from(w0.data) };
  if (agg.baseUpdate !== null) {
    const u = factored(agg.baseUpdate);
    await createTypeScriptBackend().addScaledProduct(w0New, u.layout, u.p, u.q, u.scale);
  }
  const weights = agg.metrics.weights;
  const scale = specScaling(s);
  const ideal = refIdealWeight(w0, clients, weights, scale, s.layout);
  const effective = refEffectiveWeight(w0New, agg.global.factors!, scale, s.layout);
  const updateSize = maxAbs(ideal.map((v, i) => v - w0.data[i]));
  return { clients, w0, agg, ideal, effective, updateSize, weights };
}

describe("FedEx-LoRA exactness: W0' + s·B̄Ā = Σ w_i (W0 + s·B_i A_i)", () => {
  const shapes: [string, number, number][] = [['square', 12, 12], ['wide', 7, 19], ['tall', 21, 9]];
  const layouts: Layout[] = ['linear', 'conv1d'];
  const weightings: [string, ((k: number) => number[]) | undefined][] = [
    ['uniform', undefined],
    ['weighted', (k) => Array.from({ length: k }, (_, i) => 1 + 3 * i)],
  ];
  let seed = 100;
  for (const k of [1, 2, 3, 7]) {
    for (const [shapeName, out, inF] of shapes) {
      for (const layout of layouts) {
        for (const [wName, makeW] of weightings) {
          const caseSeed = seed++;
          test(`k=${k} ${shapeName} ${out}×${inF} ${layout} ${wName}`, async () => {
            const s = spec(`model.layers.0.self_attn.q_proj`, out, inF, 3, layout, 8);
            const { agg, ideal, effective, updateSize, w0 } = await fedexRound(s, k, makeW?.(k), caseSeed);

            const err = maxAbsDiff(effective, ideal);
            assert.ok(updateSize > 1e-3, `test data must have a visible update (${updateSize})`);
            assert.ok(err <= REL_TOL * updateSize + BASE_TOL * maxAbs(w0.data), `max-abs error ${err} vs update ${updateSize}`);
            if (k === 1) assert.equal(agg.baseUpdate, null, 'one client leaves W0 unchanged');
          });
        }
      }
    }
  }

  test('FedIT on the same rounds is off by exactly its reported deviation; FedEx is not', async () => {
    for (const layout of ['linear', 'conv1d'] as const) {
      const s = spec('transformer.h.2.attn.c_attn', 10, 6, 2, layout, 4);
      const rng = createRng(7);
      const clients = randomClients(s, 3, rng);
      const w0 = randomBase(s, rng);
      const scale = specScaling(s);

      const fedit = createFedIt().aggregate(1, { spec: s, factors: null }, results(clients), []);
      assert.ok(fedit !== null);
      const ideal = refIdealWeight(w0, clients, fedit.metrics.weights, scale, layout);
      const feditEff = refEffectiveWeight(w0, fedit.global.factors!, scale, layout);
      const feditErr = frobeniusDiff(feditEff, ideal);
      const { effective, ideal: ideal2 } = await fedexRound(s, 3, undefined, 7);

      assert.equal(fedit.baseUpdate, null);
      assert.ok(feditErr > 1e-2, `FedIT must lose something here (${feditErr})`);
      assert.ok(Math.abs(feditErr - fedit.metrics.deviationNorm) <= 1e-9 * fedit.metrics.idealUpdateNorm, `${feditErr} vs ${fedit.metrics.deviationNorm}`);
      assert.ok(frobeniusDiff(effective, ideal2) < 1e-4 * feditErr, 'FedEx removes the deviation');
    }
  });

  test('the compact residual form is exact too and sends (k−1)·r columns', async () => {
    const s = spec('h.1.mlp.c_fc', 9, 14, 2, 'conv1d', 4);
    const rng = createRng(3);
    const clients = randomClients(s, 4, rng);
    const w0 = randomBase(s, rng);
    const agg = createFedEx({ residualForm: 'compact', weighting: 'explicit' }).aggregate(2, { spec: s, factors: null }, results(clients, [1, 0, 2, 5]), []);
    assert.ok(agg !== null && agg.baseUpdate !== null);
    const w0New = { shape: w0.shape, data: Float32Array.from(w0.data) };
    const u = factored(agg.baseUpdate);
    await createTypeScriptBackend().addScaledProduct(w0New, 'conv1d', u.p, u.q, u.scale);
    const ideal = refIdealWeight(w0, clients, agg.metrics.weights, specScaling(s), 'conv1d');
    const effective = refEffectiveWeight(w0New, agg.global.factors!, specScaling(s), 'conv1d');

    // Client 1 has weight 0 and drops out: 3 contributors, compact inner size (3−1)·2.
    assert.equal(u.p.shape[1], 4);
    assert.equal(agg.metrics.residualRankBound, 4);
    const updateSize = maxAbs(ideal.map((v, i) => v - w0.data[i]));
    assert.ok(maxAbsDiff(effective, ideal) <= REL_TOL * updateSize + BASE_TOL * maxAbs(w0.data));
  });

  test('rsLoRA scaling is alpha/√r and reaches the base update', () => {
    const s = spec('layers.0.q_proj', 6, 5, 4, 'linear', 8, true);
    const agg = createFedEx().aggregate(1, { spec: s, factors: null }, results(randomClients(s, 2, createRng(1))), []);
    assert.ok(agg !== null && agg.baseUpdate !== null);
    assert.equal(agg.baseUpdate.scale, 8 / 2);
    assert.equal(agg.metrics.scale, 4);
  });

  test('an empty round is "nothing usable", not an error', () => {
    const s = spec('layers.0.q_proj', 4, 4, 2, 'linear');
    assert.equal(createFedEx().aggregate(1, { spec: s, factors: null }, [], [{ client: 0, reason: 'timeout' }]), null);
  });

  test('failures make the round unusable only when acceptFailures is false', () => {
    const s = spec('layers.0.q_proj', 4, 4, 2, 'linear');
    const rs = results(randomClients(s, 2, createRng(5)));
    const failures = [{ client: 2, reason: 'disconnected' }];
    assert.equal(createFedEx({ acceptFailures: false }).aggregate(1, { spec: s, factors: null }, rs, failures), null);
    const agg = createFedEx().aggregate(1, { spec: s, factors: null }, rs, failures);
    assert.equal(agg?.metrics.failures, 1);
    assert.equal(agg?.metrics.clients, 2);
  });

  test('a client with a wrong shape is named in the error', () => {
    const s = spec('model.layers.3.self_attn.v_proj', 6, 4, 2, 'linear');
    const good = randomClients(s, 2, createRng(2));
    const bad = { a: good[1].a, b: { shape: [4, 2] as [number, number], data: new Float32Array(8) } };
    assert.throws(
      () => createFedEx().aggregate(1, { spec: s, factors: null }, [{ client: 0, factors: good[0] }, { client: 1, clientId: 'bob', factors: bad }], []),
      /client 1 \('bob'\): module 'model\.layers\.3\.self_attn\.v_proj': lora_B has shape \[4, 2\], expected \[6, 2\]/,
    );
  });
});
