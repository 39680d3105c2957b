import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkExactness, exactnessSampleRows } from '../../src/core/exactness.js';
import type { ExactnessInput } from '../../src/core/exactness.js';
import { createFedEx } from '../../src/core/strategies/fedex.js';
import { createFedIt } from '../../src/core/strategies/fedit.js';
import { addScaledProductSync } from '../../src/core/product.js';
import { specScaling } from '../../src/core/lora.js';
import { createRng } from '../../src/core/random.js';
import { frobeniusDiff, maxAbsDiff, randomBase, randomClients, refEffectiveWeight, refIdealWeight, spec, factored } from './reference.js';

function round(layout: 'linear' | 'conv1d', strategyName: 'fedex' | 'fedit', out = 11, inF = 7) {
  const s = spec('transformer.h.1.attn.c_attn', out, inF, 2, layout, 4);
  const rng = createRng(21);
  const clients = randomClients(s, 3, rng);
  const w0 = randomBase(s, rng);
  const strategy = strategyName === 'fedex' ? createFedEx({ weighting: 'explicit' }) : createFedIt({ weighting: 'explicit' });
  const agg = strategy.aggregate(1, { spec: s, factors: null }, clients.map((factors, client) => ({ client, factors, weight: client + 1 })), [])!;
  const w0New = { shape: w0.shape, data: Float32Array.from(w0.data) };
  if (agg.baseUpdate !== null) {
    const u = factored(agg.baseUpdate);
    addScaledProductSync(w0New, layout, u.p, u.q, u.scale);
  }
  const global = agg.global.factors!;
  const input: ExactnessInput = { w0, clients, weights: agg.metrics.weights, scale: specScaling(s), layout, result: { kind: 'adapter', w0New, global } };
  return { input, agg, w0, w0New, global };
}

describe('exactness check (float64 recomputation)', () => {
  for (const layout of ['linear', 'conv1d'] as const) {
    test(`${layout}: FedEx passes, FedIT fails by its deviation; errors equal an independent computation`, () => {
      const fedex = round(layout, 'fedex');
      const fedit = round(layout, 'fedit');
      const exRep = checkExactness(fedex.input);
      const itRep = checkExactness(fedit.input);
      const ideal = refIdealWeight(fedit.w0, fedit.input.clients, fedit.input.weights, fedit.input.scale, layout);
      const itEff = refEffectiveWeight(fedit.w0New, fedit.global, fedit.input.scale, layout);

      assert.equal(exRep.rowsChecked, exRep.rows);
      assert.ok(exRep.withinTolerance, `FedEx error ${exRep.maxAbsError} > ${exRep.tolerance}`);
      assert.ok(exRep.relativeError < 1e-5);
      assert.equal(itRep.withinTolerance, false);
      assert.ok(Math.abs(itRep.maxAbsError - maxAbsDiff(itEff, ideal)) < 1e-12);
      assert.ok(Math.abs(itRep.errorNorm - frobeniusDiff(itEff, ideal)) < 1e-12);
      assert.ok(Math.abs(itRep.errorNorm - fedit.agg.metrics.deviationNorm) < 1e-9 * itRep.updateNorm);
    });
  }

  test("a merged float32 weight W0' + s·B̄Ā is checked the same way", () => {
    const { input, w0New, global } = round('conv1d', 'fedex', 6, 10);
    const effective = refEffectiveWeight(w0New, global, input.scale, 'conv1d');
    const merged = { shape: w0New.shape, data: Float32Array.from(effective) };
    const corrupted = { shape: w0New.shape, data: Float32Array.from(effective) };
    corrupted.data[17] += 0.01;

    assert.ok(checkExactness({ ...input, result: { kind: 'merged', weight: merged } }).withinTolerance);
    const bad = checkExactness({ ...input, result: { kind: 'merged', weight: corrupted } });
    assert.equal(bad.withinTolerance, false);
    assert.ok(Math.abs(bad.maxAbsError - 0.01) < 1e-4);
  });

  test('the sampled check is seeded and agrees with the full check on its rows', () => {
    const { input } = round('conv1d', 'fedit', 9, 40);
    // As the streaming aggregation samples: the seeded rows, then the check on them.
    const sampled = (n: number, seed: number) => checkExactness(input, exactnessSampleRows(input.w0.shape[0], n, seed));
    const a = sampled(10, 5);
    const b = sampled(10, 5);
    const full = checkExactness(input);
    const all = sampled(1000, 5);

    assert.deepEqual(a, b);
    assert.equal(a.rowsChecked, 10);
    assert.ok(a.maxAbsError <= full.maxAbsError && a.maxAbsError > 0);
    assert.deepEqual(all, full);
  });

  test("only the sampled rows of W0 and W0' kept (packed): the same report; a corrupted sampled row is caught", () => {
    // prepare: the rows a streaming caller keeps before updating W0 in place
    const { input, w0, w0New, global } = round('linear', 'fedex', 30, 9);
    const rows = exactnessSampleRows(30, 6, 3);
    const pack = (m: { data: Float32Array }, cols: number): Float32Array => {
      const out = new Float32Array(rows.length * cols);
      rows.forEach((t, i) => out.set(m.data.subarray(t * cols, (t + 1) * cols), i * cols));
      return out;
    };
    const packedW0 = { shape: w0.shape, rows, data: pack(w0, 9) };
    // act
    const whole = checkExactness(input, rows);
    const packed = checkExactness({ ...input, w0: packedW0 }, rows);
    const bothPacked = checkExactness({ ...input, w0: packedW0, result: { kind: 'adapter', w0New: { shape: w0New.shape, rows, data: pack(w0New, 9) }, global } }, rows);
    const corrupted = Float32Array.from(w0New.data);
    corrupted[rows[2] * 9 + 4] += 0.05;
    const caught = checkExactness({ ...input, w0: packedW0, result: { kind: 'adapter', w0New: { shape: w0New.shape, data: corrupted }, global } }, rows);
    // assert
    assert.equal(rows.length, 6);
    assert.ok(whole.withinTolerance);
    assert.deepEqual(packed, whole);
    assert.deepEqual(bothPacked, whole);
    assert.equal(caught.withinTolerance, false);
    assert.ok(Math.abs(caught.maxAbsError - 0.05) < 1e-4, `the corrupted entry is the error (${caught.maxAbsError})`);
    // A row the packed matrix does not hold is refused, not read from the wrong place.
    const missing = [...Array(30).keys()].find((t) => !rows.includes(t))!;
    assert.throws(() => checkExactness({ ...input, w0: packedW0 }, [missing]), /row \d+ is checked but w0 holds only rows/);
  });

  test('mismatched shapes are refused with the layout named', () => {
    const { input } = round('linear', 'fedex');
    assert.throws(() => checkExactness({ ...input, layout: 'conv1d' }), /w0 is \[11, 7\], expected \[7, 11\] for the conv1d layout/);
  });
});
