/**
 * The client-level DP settings of a federation (`fedex host/simulate --dp-clip C --dp-noise σ
 * [--dp-delta δ]`), checked once and persisted with the plan: a resumed run keeps them, and its
 * accountant continues from the rounds already released. docs/security.md, docs/math.md §4.
 */
import { CoordinatorError } from './errors.js';

/** What the operator gives. */
export interface PrivacyConfig {
  /** C: bound on the L2 norm of each client's whole update (all modules, every part released). */
  readonly clip: number;
  /** σ: noise std per coordinate over the sensitivity C/m (0: clipping only, no privacy). */
  readonly noiseMultiplier: number;
  /** δ of the (ε, δ) reported (default {@link DEFAULT_DP_DELTA}). */
  readonly delta?: number;
}

/** The settings as persisted. */
export interface PrivacyPlan {
  readonly clip: number;
  readonly noiseMultiplier: number;
  readonly delta: number;
}

/**
 * Default δ: 1e-5, the usual choice for user-level DP (McMahan et al. 2018 use 1e-9 … 1e-5 for
 * populations of 10⁶–10⁹; Opacus' and TF Privacy's examples use 1e-5). It must stay well below
 * 1/N for N clients (δ ≥ 1/N would allow releasing one client's data outright); fixed rather than
 * derived from N because the number of clients a hosted federation will see is not known when it
 * starts, and a δ that moved would make the ε of different rounds incomparable.
 */
export const DEFAULT_DP_DELTA = 1e-5;

function fail(message: string): never {
  throw new CoordinatorError('CONFIG_INVALID', `coordinator config: ${message}`);
}

/**
 * Checks the DP settings against the rest of the plan; throws `CONFIG_INVALID` naming what is wrong.
 * DP needs uniform weights (a client's weight must not depend on what it reports) and the exact
 * residual (the noisy base update is dense and full rank: a truncated one would not be exact).
 */
export function resolvePrivacy(given: PrivacyConfig, context: { weighting: 'uniform' | 'examples'; residualRank?: number; method?: string; clientRanks?: readonly number[] }): PrivacyPlan {
  if (!(given.clip > 0 && Number.isFinite(given.clip))) fail(`privacy.clip must be a finite number > 0, got ${given.clip}`);
  if (!(given.noiseMultiplier >= 0 && Number.isFinite(given.noiseMultiplier))) fail(`privacy.noiseMultiplier must be a finite number ≥ 0, got ${given.noiseMultiplier}`);
  const delta = given.delta ?? DEFAULT_DP_DELTA;
  if (!(delta > 0 && delta < 1)) fail(`privacy.delta must be in (0, 1), got ${delta}`);
  if (context.weighting !== 'uniform') {
    fail(`client-level DP needs uniform weighting, got '${context.weighting}' (a weight from a client's own example count would change its sensitivity; the noise is calibrated to a fixed denominator)`);
  }
  if (context.residualRank !== undefined) fail('client-level DP cannot be combined with residualRank (the noisy base update is dense and full rank; truncating it would break exactness)');
  // The private round clips and noises the FedEx/FedIT/FFA parts of equal-rank updates (privateRound.ts).
  if (context.method === 'flora' || context.method === 'fedsb') fail(`client-level DP is not implemented for ${context.method} (use fedex, fedit or ffa)`);
  if (context.clientRanks !== undefined && context.clientRanks.length > 0) fail('client-level DP cannot be combined with clientRanks (the private round needs every client at the global rank)');
  return { clip: given.clip, noiseMultiplier: given.noiseMultiplier, delta };
}
