// FedEx-LoRA, FedIT and FFA-LoRA under a robust rule (src/core/strategies/robust.ts), against
// independent float64 references: the global model W0' + s·B̄Ā (W0' = W0 + D, or + Dᵀ for Conv1D,
// applied here in float32 as a client would) must equal the coordinate-wise median / trimmed mean of
// the client models W0 + s·B_i A_i, computed in float64 from the models themselves.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createStrategy } from '../../../src/core/strategies/registry.js';
import { createFedEx } from '../../../src/core/strategies/fedex.js';
import type { ClientModuleResult, ModuleAggregate } from '../../../src/core/strategies/types.js';
import type { AggregationRule } from '../../../src/core/robust.js';
import { ruleLabel } from '../../../src/core/robust.js';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { specScaling } from '../../../src/core/lora.js';
import type { Layout, LoraFactors, LoraModuleSpec } from '../../../src/core/lora.js';
import { createRng, randomMatrix } from '../../../src/core/random.js';
import type { Matrix } from '../../../src/core/tensor.js';
import { maxAbs, maxAbsDiff, randomBase, randomClients, refDelta, refEffectiveWeight, spec, refRule, factored, dense } from '../reference.js';

// Tolerance of the exactness property (docs/math.md §1.2), as for the mean: float32 round-off
// relative to the rule's update, plus the rounding of W0' itself:
// maxAbsErr ≤ 1e-5·max|rule_i(W0 + s·B_i A_i) − W0| + 1e-6·max|W0|.
const REL_TOL = 1e-5;
const BASE_TOL = 1e-6;

function results(clients: readonly LoraFactors[]): ClientModuleResult[] {
  return clients.map((factors, client) => ({ client, factors, numExamples: 10 + client }));
}

/** rule_i(W0 + s·B_i A_i) in float64, stored layout: the rule applied to the client MODELS. */
function refRobustModel(w0: Matrix, clients: readonly LoraFactors[], scale: number, layout: Layout, rule: AggregationRule): Float64Array {
  const models = clients.map((c) => {
    const d = refDelta(c, layout);
    return Float64Array.from(w0.data, (w, x) => w + scale * d[x]);
  });
  return Float64Array.from(w0.data, (_, x) => refRule(models.map((m) => m[x]), rule));
}

/** W0' as a client gets it: W0 + D (linear) or W0 + Dᵀ (conv1d), in float32. */
function applyDense(w0: Matrix<Float32Array>, agg: ModuleAggregate, s: LoraModuleSpec): Matrix<Float32Array> {
  const out = { shape: w0.shape, data: Float32Array.from(w0.data) };
  const dense = agg.baseUpdate;
  if (dense === null) return out;
  assert.equal(dense.form, 'dense', 'a robust rule folds a dense D');
  if (dense.form !== 'dense') return out;
  assert.equal(dense.layout, s.layout);
  assert.deepEqual(dense.d.shape, [s.outFeatures, s.inFeatures], 'D is out × in whatever the layout');
  for (let o = 0; o < s.outFeatures; o++) {
    for (let x = 0; x < s.inFeatures; x++) {
      const at = s.layout === 'linear' ? o * s.inFeatures + x : x * s.outFeatures + o;
      out.data[at] = Math.fround(out.data[at] + dense.d.data[o * s.inFeatures + x]);
    }
  }
  return out;
}

function robustRound(s: LoraModuleSpec, k: number, rule: AggregationRule, seed: number): { agg: ModuleAggregate; w0: Matrix<Float32Array>; clients: LoraFactors[]; effective: Float64Array; reference: Float64Array; updateSize: number } {
  const rng = createRng(seed);
  const clients = randomClients(s, k, rng);
  const w0 = randomBase(s, rng);
  const agg = createStrategy('fedex', { aggregation: rule }).aggregate(1, { spec: s, factors: null }, results(clients), []);
  assert.ok(agg !== null);
  const scale = specScaling(s);
  const effective = refEffectiveWeight(applyDense(w0, agg, s), agg.global.factors!, scale, s.layout);
  const reference = refRobustModel(w0, clients, scale, s.layout, rule);
  return { agg, w0, clients, effective, reference, updateSize: maxAbs(reference.map((v, x) => v - w0.data[x])) };
}

describe('FedEx-LoRA under a robust rule: W0 + D + s·B̄Ā = rule_i(W0 + s·B_i A_i)', () => {
  const rules: AggregationRule[] = [{ name: 'median' }, { name: 'trimmed-mean', trim: 0.2 }, { name: 'trimmed-mean', trim: 0.34 }];
  const shapes: [string, number, number][] = [['square', 10, 10], ['wide', 6, 17], ['tall', 19, 8]];
  let seed = 500;
  for (const rule of rules) {
    for (const k of [3, 4, 5, 6, 7, 10]) {
      if (rule.name === 'trimmed-mean' && Math.floor(rule.trim * k + 1e-9) === 0) continue;
      for (const [shapeName, out, inF] of shapes) {
        for (const layout of ['linear', 'conv1d'] as const) {
          const caseSeed = seed++;
          test(`${ruleLabel(rule)}, k=${k} (${k % 2 === 0 ? 'even' : 'odd'}), ${shapeName} ${out}×${inF} ${layout}`, () => {
            const s = spec('transformer.h.0.attn.c_attn', out, inF, 3, layout, 8);
            const { agg, w0, effective, reference, updateSize } = robustRound(s, k, rule, caseSeed);
            const err = maxAbsDiff(effective, reference);
            assert.ok(updateSize > 1e-2, `a visible update (${updateSize})`);
            assert.ok(err <= REL_TOL * updateSize + BASE_TOL * maxAbs(w0.data), `max-abs error ${err} vs update ${updateSize}`);
            assert.equal(agg.metrics.exact, true);
            assert.deepEqual(agg.metrics.aggregation, rule);
            assert.equal(agg.baseUpdate?.form, 'dense', 'no factored update under a robust rule: D is dense');
            assert.equal(agg.metrics.baseUpdateDenseBytes, 4 * out * inF);
          });
        }
      }
    }
  }

  test('without the base update the global model is NOT the rule of the models (the test above can fail)', () => {
    const s = spec('m', 9, 13, 3, 'conv1d', 8);
    const { agg, w0, reference, updateSize } = robustRound(s, 5, { name: 'median' }, 77);
    const withoutD = refEffectiveWeight(w0, agg.global.factors!, specScaling(s), s.layout);
    assert.ok(maxAbsDiff(withoutD, reference) > 1e-2 * updateSize);
    // And the deviation reported is ‖D‖_F, what the factor-wise median alone misses.
    const d = dense(agg.baseUpdate).d.data;
    assert.ok(Math.abs(agg.metrics.deviationNorm - Math.hypot(...d)) <= 1e-5 * agg.metrics.deviationNorm);
    assert.ok(agg.metrics.relativeDeviation > 0 && agg.metrics.relativeDeviation < Infinity);
  });

  test('trimmed mean with β = 0 gives the plain FedEx global model (uniform weights)', async () => {
    for (const layout of ['linear', 'conv1d'] as const) {
      const s = spec('model.layers.0.mlp.down_proj', 14, 9, 2, layout, 4);
      const rng = createRng(11);
      const clients = randomClients(s, 4, rng);
      const w0 = randomBase(s, rng);
      const robust = createStrategy('fedex', { aggregation: { name: 'trimmed-mean', trim: 0 } }).aggregate(1, { spec: s, factors: null }, results(clients), [])!;
      const plain = createFedEx().aggregate(1, { spec: s, factors: null }, results(clients), [])!;
      const plainW0 = { shape: w0.shape, data: Float32Array.from(w0.data) };
      const u = factored(plain.baseUpdate);
      await createTypeScriptBackend().addScaledProduct(plainW0, u.layout, u.p, u.q, u.scale);
      const scale = specScaling(s);
      const a = refEffectiveWeight(applyDense(w0, robust, s), robust.global.factors!, scale, layout);
      const b = refEffectiveWeight(plainW0, plain.global.factors!, scale, layout);
      const update = maxAbs(b.map((v, x) => v - w0.data[x]));
      assert.ok(maxAbsDiff(a, b) <= 2 * (REL_TOL * update + BASE_TOL * maxAbs(w0.data)), `${layout}: ${maxAbsDiff(a, b)}`);
      assert.ok(maxAbsDiff(robust.global.factors!.a.data, plain.global.factors!.a.data) <= 1e-6 * maxAbs(plain.global.factors!.a.data));
      assert.ok(Math.abs(robust.metrics.relativeDeviation - plain.metrics.relativeDeviation) <= 1e-4 * plain.metrics.relativeDeviation);
    }
  });

  test('the result does not depend on the order of the clients (same bits)', () => {
    const s = spec('m', 8, 6, 2, 'linear');
    const clients = randomClients(s, 6, createRng(5));
    const rule: AggregationRule = { name: 'trimmed-mean', trim: 0.2 };
    const one = createStrategy('fedex', { aggregation: rule }).aggregate(1, { spec: s, factors: null }, results(clients), [])!;
    const two = createStrategy('fedex', { aggregation: rule }).aggregate(1, { spec: s, factors: null }, results([...clients].reverse()), [])!;
    assert.deepEqual(two.global.factors, one.global.factors);
    assert.deepEqual(dense(two.baseUpdate).d.data, dense(one.baseUpdate).d.data);
  });

  test("one client: the base stays as it is and the global adapter is the client's", () => {
    const s = spec('m', 5, 7, 2, 'linear');
    const [c] = randomClients(s, 1, createRng(9));
    const agg = createStrategy('fedex', { aggregation: { name: 'median' } }).aggregate(1, { spec: s, factors: null }, results([c]), [])!;
    assert.equal(agg.baseUpdate, null);
    assert.deepEqual(agg.global.factors, c);
    assert.equal(agg.metrics.baseUpdateDenseBytes, 0);
  });
});

describe('FedIT and FFA-LoRA under a robust rule', () => {
  test('FedIT: Ā, B̄ are the coordinate-wise median of the factors; base unchanged; inexact, with the deviation s·(median(B_i A_i) − B̄Ā)', () => {
    const s = spec('m', 7, 5, 2, 'conv1d');
    const clients = randomClients(s, 5, createRng(21));
    const agg = createStrategy('fedit', { aggregation: { name: 'median' } }).aggregate(1, { spec: s, factors: null }, results(clients), [])!;
    for (const [t, pick] of [['a', (f: LoraFactors) => f.a], ['b', (f: LoraFactors) => f.b]] as const) {
      const got = pick(agg.global.factors!).data;
      got.forEach((v, x) => assert.equal(v, Math.fround(refRule(clients.map((c) => pick(c).data[x]), { name: 'median' })), `${t}[${x}]`));
    }
    assert.equal(agg.baseUpdate, null);
    assert.ok(agg.deviation !== undefined, 'the deviation D is formed for the metrics');
    assert.equal(agg.metrics.exact, false);
    assert.ok(agg.metrics.deviationNorm > 0);
    const off = createStrategy('fedit', { aggregation: { name: 'median' }, deviationMetrics: false }).aggregate(1, { spec: s, factors: null }, results(clients), [])!;
    assert.equal(off.deviation, undefined, 'no dense product without metrics');
    assert.ok(Number.isNaN(off.metrics.deviationNorm));
  });

  test('FFA: A stays the shared one, B̄ is the trimmed mean of the B_i; exact only where the rule is the mean of these clients', () => {
    const s = spec('m', 6, 4, 2, 'linear');
    const rng = createRng(33);
    const a = randomMatrix(2, 4, rng, 0.5);
    const clients = Array.from({ length: 5 }, () => ({ a: { shape: a.shape, data: Float32Array.from(a.data) }, b: randomMatrix(6, 2, rng, 0.3) }));
    const rule: AggregationRule = { name: 'trimmed-mean', trim: 0.2 };
    const agg = createStrategy('ffa', { aggregation: rule }).aggregate(1, { spec: s, factors: { a, b: randomMatrix(6, 2, rng) } }, results(clients), [])!;
    assert.deepEqual(agg.global.factors!.a.data, a.data);
    agg.global.factors!.b.data.forEach((v, x) => assert.equal(v, Math.fround(refRule(clients.map((c) => c.b.data[x]), rule))));
    assert.equal(agg.metrics.exact, false);
    const two = createStrategy('ffa', { aggregation: { name: 'median' } }).aggregate(1, { spec: s, factors: null }, results(clients.slice(0, 2)), [])!;
    assert.equal(two.metrics.exact, true, 'the median of two is their mean');
    const moved = clients.map((c, i) => (i === 3 ? { ...c, a: randomMatrix(2, 4, rng) } : c));
    assert.throws(() => createStrategy('ffa', { aggregation: rule }).aggregate(1, { spec: s, factors: { a, b: randomMatrix(6, 2, rng) } }, results(moved), []), /ffa: module 'm': client 3's lora_A differs/);
  });
});

describe('robust strategies refuse what they cannot do', () => {
  const s = spec('m', 4, 4, 2, 'linear');
  const clients = randomClients(s, 4, createRng(1));
  test('weighting by examples (the rules are unweighted), and residualRank', () => {
    assert.throws(() => createStrategy('fedex', { aggregation: { name: 'median' }, weighting: 'examples' }), /the median rule is unweighted .* cannot be combined with 'examples' weighting/);
    assert.throws(() => createStrategy('fedex', { aggregation: { name: 'median' }, residualRank: 2 }), /residualRank applies to the mean rule only, not to median/);
    assert.throws(() => createStrategy('fedex', { aggregation: { name: 'trimmed-mean', trim: 0.7 } }), /trim must be in \[0, 0\.5\)/);
  });

  test('a round whose clients are too few for the trim, naming the module; an empty round is nothing usable', () => {
    const strategy = createStrategy('fedex', { aggregation: { name: 'trimmed-mean', trim: 0.2 } });
    assert.throws(() => strategy.aggregate(1, { spec: s, factors: null }, results(clients), []), /fedex: module 'm': trimmed-mean with trim 0\.2 drops ⌊0\.2·4⌋ = 0 of 4 clients/);
    assert.equal(strategy.aggregate(1, { spec: s, factors: null }, [], []), null);
    assert.equal(createStrategy('fedex', { aggregation: { name: 'mean' } }).aggregation, undefined, 'mean is the plain strategy');
  });
});
