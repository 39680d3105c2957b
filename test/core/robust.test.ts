// The robust rules' pure functions (src/core/robust.ts) against plain float64 references: the
// coordinate-wise median and trimmed mean, the rules' checks and messages, the row-blocked dense
// residual (the same bits whatever the block size), and the dense update written as factors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  aggregationRule,
  denseAsFactored,
  robustCombine,
  robustResidual,
  ruleIsMean,
  ruleLabel,
  ruleProblem,
  trimmedPerEnd,
} from '../../src/core/robust.js';
import type { AggregationRule } from '../../src/core/robust.js';
import { addScaledProductSync } from '../../src/core/product.js';
import { createRng, randomMatrix } from '../../src/core/random.js';
import type { Matrix } from '../../src/core/tensor.js';
import { maxAbs, maxAbsDiff, randomClients, refMatmul, spec, refRule } from './reference.js';

const MEDIAN: AggregationRule = { name: 'median' };
const TRIM_20: AggregationRule = { name: 'trimmed-mean', trim: 0.2 };

describe('robust rules', () => {
  test('aggregationRule checks the name and the trim, naming the bad value', () => {
    assert.deepEqual(aggregationRule('median'), { name: 'median' });
    assert.deepEqual(aggregationRule('trimmed-mean'), { name: 'trimmed-mean', trim: 0.2 });
    assert.deepEqual(aggregationRule('trimmed-mean', 0), { name: 'trimmed-mean', trim: 0 });
    assert.throws(() => aggregationRule('mode'), /aggregation rule must be one of mean, median, trimmed-mean, got 'mode'/);
    assert.throws(() => aggregationRule('trimmed-mean', 0.5), /trim must be in \[0, 0\.5\).*got 0\.5/);
    assert.throws(() => aggregationRule('trimmed-mean', -0.1), /got -0\.1/);
    assert.throws(() => aggregationRule('trimmed-mean', NaN), /got NaN/);
    assert.throws(() => aggregationRule('median', 0.2), /a trim applies to the trimmed-mean rule only, not to median/);
    assert.equal(ruleLabel(TRIM_20), 'trimmed-mean 0.2');
    assert.equal(ruleLabel(undefined), 'mean');
  });

  test('a trimmed mean that would drop nobody is refused with the clients it needs; β = 0 is the plain mean on purpose', () => {
    assert.equal(trimmedPerEnd(0.29, 100), 29, 'no float shortfall below an integer');
    assert.equal(trimmedPerEnd(0.2, 5), 1);
    assert.equal(ruleProblem(TRIM_20, 5), null);
    assert.match(ruleProblem(TRIM_20, 4)!, /drops ⌊0\.2·4⌋ = 0 of 4 clients at each end .*needs at least 5 clients, or a trim of at least 0\.25 for 4/);
    assert.match(ruleProblem(TRIM_20, 2)!, /needs at least 5 clients$/, 'no trim below 0.5 drops one of 2');
    assert.equal(ruleProblem({ name: 'trimmed-mean', trim: 0 }, 2), null);
    assert.equal(ruleProblem(MEDIAN, 1), null);
    assert.ok(ruleIsMean(MEDIAN, 2) && !ruleIsMean(MEDIAN, 3));
    assert.ok(ruleIsMean({ name: 'trimmed-mean', trim: 0 }, 9) && !ruleIsMean(TRIM_20, 5));
  });

  for (const rule of [MEDIAN, TRIM_20, { name: 'trimmed-mean', trim: 0.34 } as AggregationRule]) {
    for (const k of [1, 2, 3, 4, 5, 6, 9, 30]) {
      if (ruleProblem(rule, k) !== null) continue;
      test(`robustCombine ${ruleLabel(rule)}, ${k} clients, equals the float64 reference (rounded once)`, () => {
        const rng = createRng(k * 31 + rule.name.length);
        const mats = Array.from({ length: k }, () => randomMatrix(3, 5, rng, 1));
        const got = robustCombine(mats, rule);
        for (let x = 0; x < 15; x++) assert.equal(got.data[x], Math.fround(refRule(mats.map((m) => m.data[x]), rule)), `coordinate ${x}`);
      });
    }
  }

  test('the median ignores one huge value where the mean follows it', () => {
    const mats = [1, 2, 3, 4, 1e12].map((v) => ({ shape: [1, 1] as [number, number], data: new Float32Array([v]) }));
    assert.equal(robustCombine(mats, MEDIAN).data[0], 3);
    assert.equal(robustCombine(mats, TRIM_20).data[0], 3);
  });

  test('robustResidual: D = s·(rule_i(B_i A_i) − B̄Ā) against a float64 reference, the same bits with any row block', () => {
    const s = spec('m', 11, 7, 3, 'linear');
    for (const [k, rule] of [[5, MEDIAN], [6, TRIM_20], [4, MEDIAN]] as [number, AggregationRule][]) {
      const clients = randomClients(s, k, createRng(k));
      const global = { a: robustCombine(clients.map((c) => c.a), rule), b: robustCombine(clients.map((c) => c.b), rule) };
      const scale = 1.5;
      const products = clients.map((c) => refMatmul(c.b, c.a));
      const gbar = refMatmul(global.b, global.a);
      const expected = new Float64Array(11 * 7).map((_, x) => scale * (refRule(products.map((p) => p[x]), rule) - gbar[x]));
      const whole = robustResidual(clients, global, scale, rule);
      assert.ok(maxAbsDiff(whole.d!.data, expected) <= 1e-6 * maxAbs(expected), `${k} ${ruleLabel(rule)}`);
      assert.ok(maxAbs(expected) > 1e-2, 'a visible residual');
      for (const blockValues of [1, k * 7, k * 7 * 4]) {
        const blocked = robustResidual(clients, global, scale, rule, { blockValues });
        assert.deepEqual(blocked.d!.data, whole.d!.data, `block of ${blockValues} values`);
      }
      const normsOnly = robustResidual(clients, global, scale, rule, { keep: false });
      assert.equal(normsOnly.d, null);
      assert.equal(normsOnly.deviationNorm, whole.deviationNorm);
      const ideal = Math.hypot(...products[0].map((_, x) => scale * refRule(products.map((p) => p[x]), rule)));
      assert.ok(Math.abs(whole.idealUpdateNorm - ideal) <= 1e-12 * ideal);
    }
  });

  test('robustResidual of one client is exactly zero', () => {
    const s = spec('m', 4, 6, 2, 'linear');
    const [c] = randomClients(s, 1, createRng(3));
    const r = robustResidual([c], c, 2, MEDIAN);
    assert.ok(r.zero);
    assert.ok(r.d!.data.every((v) => v === 0));
  });

  for (const [out, inF] of [[5, 9], [9, 5], [6, 6]]) {
    for (const layout of ['linear', 'conv1d'] as const) {
      test(`denseAsFactored ${out}×${inF} ${layout}: W0 + scale·P·Q adds exactly D (Dᵀ for conv1d)`, () => {
        const rng = createRng(out * inF);
        const d = randomMatrix(out, inF, rng, 0.1);
        const w0: Matrix<Float32Array> = layout === 'linear' ? randomMatrix(out, inF, rng, 1) : randomMatrix(inF, out, rng, 1);
        const got = { shape: w0.shape, data: Float32Array.from(w0.data) };
        const u = denseAsFactored(d, layout);
        assert.equal(u.p.shape[1], Math.min(out, inF));
        addScaledProductSync(got, u.layout, u.p, u.q, u.scale);
        for (let o = 0; o < out; o++) {
          for (let x = 0; x < inF; x++) {
            const at = layout === 'linear' ? o * inF + x : x * out + o;
            assert.equal(got.data[at], Math.fround(w0.data[at] + d.data[o * inF + x]), `[${o}, ${x}]`);
          }
        }
      });
    }
  }
});
