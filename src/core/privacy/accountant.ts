/**
 * The privacy accountant of client-level DP: Rényi differential privacy (RDP) of the sampled
 * Gaussian mechanism (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled
 * Gaussian Mechanism", §3.3: the quantity log A_α for integer and fractional orders, as TF Privacy's
 * and Opacus' `compute_rdp` compute it), composed over rounds by adding RDP order by order, and
 * converted to (ε, δ) with the conversion of Balle et al. 2020 ("Hypothesis testing interpretations
 * and Rényi differential privacy", Theorem 21; Opacus' `get_privacy_spent`):
 *
 *   ε = min over α of  RDP(α) − (log δ + log α)/(α − 1) + log((α − 1)/α).
 *
 * With sampling rate q = 1 (no amplification claimed) one round of noise multiplier σ has
 * RDP(α) = α/(2σ²). Pure: numbers in, numbers out. docs/math.md §4 has the mechanism it accounts for.
 */
import { logErfc } from './special.js';

/**
 * The orders α the accountant minimises over: Opacus' default grid (1.1, 1.2, …, 10.9, 12, 13, …, 63)
 * plus 128, 256 and 512 as in TF Privacy's `compute_dp_sgd_privacy`, so a large noise multiplier
 * over few rounds (whose best order is above 63) is not overcharged.
 */
export const DEFAULT_RDP_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
  128,
  256,
  512,
];

/** log(e^x + e^y). */
function logAdd(x: number, y: number): number {
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  if (a === -Infinity) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

/** log(e^x − e^y) for x ≥ y. */
function logSub(x: number, y: number, what: () => string): number {
  if (x < y) throw new RangeError(`accountant: ${what()}: log A_α became negative (log-space subtraction ${x} − ${y})`);
  if (y === -Infinity) return x;
  if (x === y) return -Infinity;
  const d = x - y;
  // e^d − 1 overflows past d ≈ 709; there log(e^d − 1) = d to double precision.
  return (d > 700 ? d : Math.log(Math.expm1(d))) + y;
}

/** log A_α for integer α: log Σ_i C(α, i) q^i (1 − q)^(α−i) e^((i² − i)/(2σ²)). */
function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logA = -Infinity;
  let logBinom = 0;
  for (let i = 0; i <= alpha; i++) {
    logA = logAdd(logA, logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / (2 * sigma * sigma));
    logBinom += Math.log(alpha - i) - Math.log(i + 1);
  }
  return logA;
}

/**
 * log A_α for fractional α: the two halves of the integral, over (−∞, z0] and [z0, ∞), as series
 * with binomial coefficients C(α, i) of alternating sign past i > α; summed until both terms
 * fall below e^−30 (as the reference implementations do).
 */
function logAFractional(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const s2 = Math.SQRT2 * sigma;
  const what = (): string => `q = ${q}, σ = ${sigma}, α = ${alpha}`;
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  let logBinom = 0;
  let sign = 1;
  for (let i = 0;; i++) {
    if (i > 100_000) throw new RangeError(`accountant: ${what()}: the series for log A_α did not converge`);
    const j = alpha - i;
    const logS0 = logBinom + i * logQ + j * log1mQ + (i * i - i) / (2 * sigma * sigma) + Math.log(0.5) + logErfc((i - z0) / s2);
    const logS1 = logBinom + j * logQ + i * log1mQ + (j * j - j) / (2 * sigma * sigma) + Math.log(0.5) + logErfc((z0 - j) / s2);
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0, what);
      logA1 = logSub(logA1, logS1, what);
    }
    const ratio = (alpha - i) / (i + 1);
    if (ratio < 0) sign = -sign;
    logBinom += Math.log(Math.abs(ratio));
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

function checkMechanism(q: number, noiseMultiplier: number): void {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`accountant: the sampling rate q must be in [0, 1], got ${q}`);
  if (!(noiseMultiplier >= 0 && Number.isFinite(noiseMultiplier))) throw new RangeError(`accountant: the noise multiplier must be a finite number ≥ 0, got ${noiseMultiplier}`);
}

function checkOrders(orders: readonly number[]): void {
  if (orders.length === 0) throw new RangeError('accountant: no RDP orders given');
  const bad = orders.findIndex((a) => !(a > 1));
  if (bad >= 0) throw new RangeError(`accountant: RDP orders must be > 1, orders[${bad}] is ${orders[bad]}`);
}

/** RDP at order α of one application of the sampled Gaussian mechanism (sensitivity 1, noise std `noiseMultiplier`, sampling rate q). */
export function rdpSampledGaussianAt(q: number, noiseMultiplier: number, alpha: number): number {
  checkMechanism(q, noiseMultiplier);
  if (!(alpha > 1)) throw new RangeError(`accountant: the RDP order must be > 1, got ${alpha}`);
  if (q === 0) return 0;
  if (noiseMultiplier === 0) return Infinity;
  if (q === 1) return alpha / (2 * noiseMultiplier * noiseMultiplier);
  if (alpha === Infinity) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInteger(q, noiseMultiplier, alpha) : logAFractional(q, noiseMultiplier, alpha);
  return logA / (alpha - 1);
}

/** RDP of `steps` applications of the sampled Gaussian mechanism at every order (composition adds RDP). */
export function rdpSampledGaussian(q: number, noiseMultiplier: number, steps: number, orders: readonly number[] = DEFAULT_RDP_ORDERS): Float64Array {
  checkMechanism(q, noiseMultiplier);
  checkOrders(orders);
  if (!(Number.isInteger(steps) && steps >= 0)) throw new RangeError(`accountant: steps must be an integer ≥ 0, got ${steps}`);
  return Float64Array.from(orders, (a) => (steps === 0 ? 0 : steps * rdpSampledGaussianAt(q, noiseMultiplier, a)));
}

/** (ε, δ) spent: the smallest ε over the orders, and the order that gave it (null when ε is infinite). */
export interface PrivacySpent {
  readonly epsilon: number;
  readonly order: number | null;
}

/** The smallest ε at which RDP values `rdp` (at `orders`) give (ε, δ)-DP (Balle et al. 2020, Theorem 21). */
export function rdpToEpsilon(orders: readonly number[], rdp: ArrayLike<number>, delta: number): PrivacySpent {
  checkOrders(orders);
  if (rdp.length !== orders.length) throw new RangeError(`accountant: ${rdp.length} RDP values for ${orders.length} orders`);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`accountant: δ must be in (0, 1), got ${delta}`);
  let best = Infinity;
  let order: number | null = null;
  const logDelta = Math.log(delta);
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    const r = rdp[k];
    if (r < 0 || Number.isNaN(r)) throw new RangeError(`accountant: RDP at order ${a} must be ≥ 0, got ${r}`);
    const eps = r - (logDelta + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    if (eps < best) {
      best = eps;
      order = a;
    }
  }
  return best === Infinity ? { epsilon: Infinity, order: null } : { epsilon: Math.max(0, best), order };
}

/** What a run of the sampled Gaussian mechanism spends, for the accountant. */
export interface GaussianRun {
  /** Sampling rate of each round (1: every client's slot is in every round, no amplification). */
  readonly samplingRate: number;
  /** Noise std / L2 sensitivity. */
  readonly noiseMultiplier: number;
  /** Rounds released so far. */
  readonly rounds: number;
  readonly delta: number;
  readonly orders?: readonly number[];
}

/** ε at δ after `rounds` rounds of the same sampled Gaussian mechanism (0 rounds: 0). */
export function gaussianPrivacySpent(run: GaussianRun): PrivacySpent {
  const orders = run.orders ?? DEFAULT_RDP_ORDERS;
  if (run.rounds === 0) {
    if (!(run.delta > 0 && run.delta < 1)) throw new RangeError(`accountant: δ must be in (0, 1), got ${run.delta}`);
    return { epsilon: 0, order: null };
  }
  return rdpToEpsilon(orders, rdpSampledGaussian(run.samplingRate, run.noiseMultiplier, run.rounds, orders), run.delta);
}
