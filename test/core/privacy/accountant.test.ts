// The RDP accountant against published values of the reference implementations (each cited where
// it is used), the closed form of the Gaussian mechanism, an independent numerical integral of
// A_α, and the exact privacy profile of the Gaussian mechanism (the RDP bound must never claim less).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_RDP_ORDERS, gaussianPrivacySpent, rdpSampledGaussian, rdpSampledGaussianAt, rdpToEpsilon } from '../../../src/core/privacy/accountant.js';
import { erfc } from '../../../src/core/privacy/special.js';

/** Opacus' RDPAccountant.DEFAULT_ALPHAS: [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)). */
const OPACUS_ALPHAS = [...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10), ...Array.from({ length: 52 }, (_, i) => 12 + i)];

function closeRel(actual: number, expected: number, rtol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= rtol * Math.abs(expected), `${what}: ${actual} vs ${expected} (rtol ${rtol})`);
}

/** A_α = E_{z∼N(0,σ²)}[((1 − q) + q·e^((2z − 1)/(2σ²)))^α] by composite Simpson over ±60σ (independent of the series). */
function logAByQuadrature(q: number, sigma: number, alpha: number): number {
  const n = 400_000;
  const lo = -60 * sigma;
  const h = (120 * sigma) / n;
  let sum = 0;
  for (let i = 0; i <= n; i++) {
    const z = lo + i * h;
    const f = (Math.exp((-z * z) / (2 * sigma * sigma)) / (Math.sqrt(2 * Math.PI) * sigma)) * ((1 - q) + q * Math.exp((2 * z - 1) / (2 * sigma * sigma))) ** alpha;
    sum += (i === 0 || i === n ? 1 : i % 2 === 1 ? 4 : 2) * f;
  }
  return Math.log((sum * h) / 3);
}

/** Exact δ(ε) of the Gaussian mechanism with noise multiplier σ (Balle & Wang 2018, Theorem 8): Φ(−εσ + 1/(2σ)) − e^ε Φ(−εσ − 1/(2σ)). */
function exactGaussianDelta(eps: number, sigma: number): number {
  const phi = (x: number): number => erfc(-x / Math.SQRT2) / 2;
  return phi(-eps * sigma + 1 / (2 * sigma)) - Math.exp(eps) * phi(-eps * sigma - 1 / (2 * sigma));
}

describe('RDP accountant: published values', () => {
  test('Opacus: σ = 1.5, q = 0.04, 2250 steps, δ = 1e-5 → ε = 7.32911117143 (default alphas)', () => {
    // pytorch/opacus opacus/tests/accountants_test.py, AccountingTest.test_rdp_accountant (assertAlmostEqual: 7 places).
    const rdp = rdpSampledGaussian(0.04, 1.5, Math.trunc(90 / 0.04), OPACUS_ALPHAS);
    const spent = rdpToEpsilon(OPACUS_ALPHAS, rdp, 1e-5);
    assert.ok(Math.abs(spent.epsilon - 7.32911117143) < 5e-8, `ε = ${spent.epsilon}`);
  });

  test('Opacus docstring: (q, σ, steps) = (1e-5, 1, 10) then (1e-4, 3, 4), orders 2..32, δ = 1e-5 → (0.336, 23)', () => {
    // pytorch/opacus opacus/accountants/analysis/rdp.py, module docstring example (doctest +NUMBER: 3 decimals).
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const r1 = rdpSampledGaussian(1e-5, 1.0, 10, orders);
    const r2 = rdpSampledGaussian(1e-4, 3.0, 4, orders);
    const spent = rdpToEpsilon(orders, r1.map((x, i) => x + r2[i]), 1e-5);
    assert.ok(Math.abs(spent.epsilon - 0.336) < 5e-4, `ε = ${spent.epsilon}`);
    assert.equal(spent.order, 23);
  });

  test('dp_accounting: RDP of 50 steps at σ = 2.5, q = 0.01 (rtol 1e-4), integer and fractional orders', () => {
    // google/differential-privacy python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py,
    // test_compute_rdp_poisson_sampled_gaussian: orders [1.5, 2.5, 5, 50, 100, inf] → [6.70579741e-04,
    // 1.08548710e-03, 2.18075656e-03, 2.38460375e-02, 1.67416308e02, inf], np.allclose(rtol=1e-4).
    const orders = [2.5, 5, 50, 100];
    const published = [1.08548710e-03, 2.18075656e-03, 2.38460375e-02, 1.67416308e02];
    const rdp = rdpSampledGaussian(0.01, 2.5, 50, orders);
    orders.forEach((a, i) => closeRel(rdp[i], published[i], 1e-4, `order ${a}`));
    assert.equal(rdpSampledGaussianAt(0.01, 2.5, Infinity), Infinity);
    // At α = 1.5 that version sums the series' terms by absolute value (an upper bound, 6.70579741e-04);
    // this accountant sums them with their signs, as Opacus and TF Privacy's rdp_accountant do: never more,
    // and equal to A_α integrated numerically.
    const exact = rdpSampledGaussian(0.01, 2.5, 50, [1.5])[0];
    assert.ok(exact <= 6.70579741e-04, `${exact} exceeds the published upper bound`);
    closeRel(exact, (50 * logAByQuadrature(0.01, 2.5, 1.5)) / 0.5, 1e-7, 'α = 1.5 vs quadrature');
  });

  test('dp_accounting: constant RDP 1.1 over orders 2..32 at δ = 1e-5 → ε = 1.32783806176 at order 32', () => {
    // rdp_privacy_accountant_test.py, test_compute_epsilon_delta_pure_dp (assertAlmostEqual: 7 places).
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const spent = rdpToEpsilon(orders, orders.map(() => 1.1), 1e-5);
    assert.ok(Math.abs(spent.epsilon - 1.32783806176) < 5e-8, `ε = ${spent.epsilon}`);
    assert.equal(spent.order, 32);
  });

  test('dp_accounting: q = 1, σ = 4.530877117 is (1, 1e-6)-DP over the orders 1.001..99.999', () => {
    // rdp_privacy_accountant_test.py, test_compute_epsilon_delta_gaussian ("noise multiplier is chosen to
    // obtain exactly (1, 1e-6)-DP"; orders 0.001·i for i in 1000..99999, the first (α = 1) left out here
    // as this conversion needs α > 1; assertAlmostEqual: 7 places).
    const orders = Array.from({ length: 98_999 }, (_, i) => 0.001 * (i + 1001));
    const spent = rdpToEpsilon(orders, rdpSampledGaussian(1, 4.530877117, 1, orders), 1e-6);
    assert.ok(Math.abs(spent.epsilon - 1) < 5e-8, `ε = ${spent.epsilon}`);
  });
});

describe('RDP accountant: the Gaussian mechanism without sampling (q = 1)', () => {
  test('closed form α/(2σ²), composed by adding over rounds', () => {
    for (const [sigma, alpha] of [[0.5, 1.1], [1, 2], [4.2, 63], [10, 512]]) {
      assert.equal(rdpSampledGaussianAt(1, sigma, alpha), alpha / (2 * sigma * sigma));
    }
    const orders = [1.5, 8, 64];
    const seven = rdpSampledGaussian(1, 1.3, 7, orders);
    orders.forEach((a, i) => closeRel(seven[i], (7 * a) / (2 * 1.3 * 1.3), 1e-15, `7 rounds at α = ${a}`));
  });

  test('T rounds at σ spend what one round at σ/√T spends, and ε grows with every round', () => {
    let previous = 0;
    for (let t = 1; t <= 20; t++) {
      const spent = gaussianPrivacySpent({ samplingRate: 1, noiseMultiplier: 2, rounds: t, delta: 1e-5 });
      const once = gaussianPrivacySpent({ samplingRate: 1, noiseMultiplier: 2 / Math.sqrt(t), rounds: 1, delta: 1e-5 });
      closeRel(spent.epsilon, once.epsilon, 1e-12, `round ${t}`);
      assert.ok(spent.epsilon > previous, `round ${t}: ${spent.epsilon} after ${previous}`);
      previous = spent.epsilon;
    }
  });

  test('sound: the exact δ of the Gaussian mechanism at the reported ε never exceeds the δ asked for, and is close to it', () => {
    for (const sigma of [0.7, 1, 2, 5, 20]) {
      for (const delta of [1e-3, 1e-5, 1e-9]) {
        const { epsilon } = gaussianPrivacySpent({ samplingRate: 1, noiseMultiplier: sigma, rounds: 1, delta });
        const exact = exactGaussianDelta(epsilon, sigma);
        assert.ok(exact <= delta, `σ ${sigma}, δ ${delta}: ε ${epsilon} has exact δ ${exact}`);
        // The RDP conversion is not tight, but not wildly loose either on this grid.
        assert.ok(exact > delta / 100, `σ ${sigma}, δ ${delta}: ε ${epsilon} is far from tight (exact δ ${exact})`);
      }
    }
  });

  test('no noise: no privacy; no rounds: ε = 0; the default grid reaches order 512', () => {
    assert.deepEqual(gaussianPrivacySpent({ samplingRate: 1, noiseMultiplier: 0, rounds: 3, delta: 1e-5 }), { epsilon: Infinity, order: null });
    assert.deepEqual(gaussianPrivacySpent({ samplingRate: 1, noiseMultiplier: 1, rounds: 0, delta: 1e-5 }), { epsilon: 0, order: null });
    assert.equal(DEFAULT_RDP_ORDERS.at(-1), 512);
    assert.equal(gaussianPrivacySpent({ samplingRate: 1, noiseMultiplier: 40, rounds: 1, delta: 1e-5 }).order! > 63, true, 'a large σ is not charged at the edge of the grid');
  });

  test('bad inputs are refused naming what is wrong', () => {
    assert.throws(() => rdpSampledGaussian(1.5, 1, 1), /sampling rate q must be in \[0, 1\], got 1\.5/);
    assert.throws(() => rdpSampledGaussian(0.1, -1, 1), /noise multiplier must be a finite number ≥ 0, got -1/);
    assert.throws(() => rdpSampledGaussian(0.1, 1, 1.5), /steps must be an integer ≥ 0, got 1\.5/);
    assert.throws(() => rdpSampledGaussian(0.1, 1, 1, [2, 1]), /orders\[1\] is 1/);
    assert.throws(() => rdpToEpsilon([2, 3], [0.1], 1e-5), /1 RDP values for 2 orders/);
    assert.throws(() => rdpToEpsilon([2], [0.1], 1), /δ must be in \(0, 1\), got 1/);
    assert.throws(() => rdpToEpsilon([2], [-0.1], 1e-5), /RDP at order 2 must be ≥ 0/);
  });
});
