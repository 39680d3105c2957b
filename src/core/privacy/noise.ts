/**
 * Gaussian noise for client-level DP. In production the noise comes from the operating system's
 * cryptographically secure generator (node:crypto `randomFillSync`): 53-bit uniforms from two
 * 32-bit words each, turned into normal pairs by Box–Muller in float64. The product has no other
 * source; the tests inject a seeded one (test/core/privacy/seededNoise.ts), whose predictable stream
 * gives no privacy.
 *
 * Floating-point caveat (docs/security.md): Box–Muller in float64 samples a discrete approximation
 * of the normal distribution (|z| ≤ √(−2 ln 2⁻⁵³) ≈ 8.57, values on a non-uniform grid), and the
 * noisy result is rounded to float32. Mironov (CCS 2012) showed that the low-order bits of
 * textbook floating-point Laplace samples can leak the unnoised value; the same class of attack
 * is not ruled out here. A discrete Gaussian (Canonne, Kamath, Steinke 2020) would remove it.
 */
import { randomFillSync } from 'node:crypto';

/** A source of independent standard normal samples. */
export interface GaussianSource {
  /** `secure`: from a cryptographically secure generator; `seeded`: reproducible, for tests only. */
  readonly kind: 'secure' | 'seeded';
  /** Fills `out` with independent N(0, 1) samples. */
  fill(out: Float64Array): void;
}

const TWO_POW_32 = 4294967296;
const TWO_POW_MINUS_53 = 2 ** -53;
/** 32-bit words drawn per call to the OS generator (4 words per pair of normals). */
const WORDS = 1 << 14;

/** A uniform in [0, 1) from two 32-bit words: 21 high bits of the first, 32 of the second (53 bits). */
function uniform53(hi: number, lo: number): number {
  return ((hi >>> 11) * TWO_POW_32 + lo) * TWO_POW_MINUS_53;
}

/** Normal pairs by Box–Muller from a stream of 32-bit words (4 words per pair). */
function boxMuller(out: Float64Array, words: Uint32Array, refill: () => void): void {
  let w = words.length;
  for (let i = 0; i < out.length; i += 2) {
    if (w + 4 > words.length) {
      refill();
      w = 0;
    }
    // 1 − u lies in (0, 1]: the logarithm is finite.
    const u1 = 1 - uniform53(words[w], words[w + 1]);
    const u2 = uniform53(words[w + 2], words[w + 3]);
    w += 4;
    const radius = Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2;
    out[i] = radius * Math.cos(angle);
    if (i + 1 < out.length) out[i + 1] = radius * Math.sin(angle);
  }
}

/** Standard normals from node:crypto's CSPRNG (the production source). */
export function createSecureGaussianSource(): GaussianSource {
  const words = new Uint32Array(WORDS);
  return {
    kind: 'secure',
    fill(out) {
      boxMuller(out, words, () => randomFillSync(words));
    },
  };
}
