// The Gaussian sources: moments of ≥ 1e5 samples within stated statistical tolerances (standard
// errors of the sample mean, variance and kurtosis of a normal sample), independence of two secure
// sources, and reproducibility of the seeded source the other DP tests inject (./seededNoise.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createSecureGaussianSource, type GaussianSource } from '../../../src/core/privacy/noise.js';
import { seededGaussianSource } from './seededNoise.js';

const N = 200_001; // odd: the last pair's second value is dropped

function moments(x: Float64Array): { mean: number; variance: number; kurtosis: number; maxAbs: number } {
  let mean = 0;
  for (const v of x) mean += v / x.length;
  let m2 = 0;
  let m4 = 0;
  let maxAbs = 0;
  for (const v of x) {
    const d = (v - mean) ** 2;
    m2 += d / x.length;
    m4 += (d * d) / x.length;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  return { mean, variance: m2, kurtosis: m4 / (m2 * m2), maxAbs };
}

/** Sample moments of N(0, 1) within 6 standard errors: mean 1/√n, variance √(2/n), kurtosis √(24/n). */
function assertStandardNormal(source: GaussianSource, what: string): void {
  const x = new Float64Array(N);
  source.fill(x);
  const m = moments(x);
  assert.ok(Math.abs(m.mean) < 6 / Math.sqrt(N), `${what}: mean ${m.mean}`);
  assert.ok(Math.abs(m.variance - 1) < 6 * Math.sqrt(2 / N), `${what}: variance ${m.variance}`);
  assert.ok(Math.abs(m.kurtosis - 3) < 6 * Math.sqrt(24 / N), `${what}: kurtosis ${m.kurtosis}`);
  assert.ok(m.maxAbs > 3.5 && m.maxAbs < 8.6, `${what}: max |z| ${m.maxAbs} (tails present, within Box–Muller's 53-bit bound 8.57)`);
  let sameSign = 0;
  for (let i = 1; i < N; i++) if (Math.sign(x[i]) === Math.sign(x[i - 1])) sameSign++;
  assert.ok(Math.abs(sameSign / (N - 1) - 0.5) < 6 * 0.5 / Math.sqrt(N), `${what}: consecutive samples look dependent (${sameSign} same-sign pairs)`);
}

describe('Gaussian noise sources', () => {
  test('secure (node:crypto): standard normal moments over 2e5 samples; two sources give different streams', () => {
    const a = createSecureGaussianSource();
    assert.equal(a.kind, 'secure');
    assertStandardNormal(a, 'secure');
    const x = new Float64Array(64);
    const y = new Float64Array(64);
    a.fill(x);
    createSecureGaussianSource().fill(y);
    assert.ok(x.some((v, i) => v !== y[i]));
  });

  test('seeded (the source the DP tests inject): standard normal moments, and the same seed gives the same stream', () => {
    const s = seededGaussianSource(7);
    assert.equal(s.kind, 'seeded');
    assertStandardNormal(s, 'seeded');
    const x = new Float64Array(1001);
    const y = new Float64Array(1001);
    seededGaussianSource(3).fill(x);
    seededGaussianSource(3).fill(y);
    assert.deepEqual(x, y);
    seededGaussianSource(4).fill(y);
    assert.notDeepEqual(x, y);
  });
});
