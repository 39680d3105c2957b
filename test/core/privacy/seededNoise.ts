/**
 * A seeded Gaussian source for the tests of client-level DP: reproducible standard normals from
 * core/random.ts (mulberry32, Box–Muller), injected where the product uses node:crypto's
 * `createSecureGaussianSource`. Its stream is predictable: no privacy.
 */
import type { GaussianSource } from '../../../src/core/privacy/noise.js';
import { createRng, fillGaussian } from '../../../src/core/random.js';

/** Standard normals from a seeded stream: the same seed gives the same samples. */
export function seededGaussianSource(seed: number): GaussianSource {
  const rng = createRng(seed);
  return {
    kind: 'seeded',
    fill(out) {
      fillGaussian(out, rng);
    },
  };
}
