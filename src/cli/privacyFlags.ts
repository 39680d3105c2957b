/**
 * The client-level DP flags of `fedex host` and `fedex simulate` (`--dp-clip C --dp-noise σ
 * [--dp-delta δ]`), checked with errors naming the flag, and the lines both commands print: the
 * settings once, and per round the ε spent so far (docs/security.md).
 */
import { DEFAULT_DP_DELTA, type PrivacyConfig, type PrivacyPlan } from '../federation/coordinator/privacyPlan.js';
import type { RoundPrivacy } from '../federation/coordinator/events.js';
import { numberFlag, optionalString, type FlagSpecs, type ParsedArgs } from './args.js';
import { usageError } from './errors.js';
import { formatNumber } from './ui/table.js';

/** The flags (spread into a command's `FlagSpecs`). */
export const DP_FLAGS: FlagSpecs = {
  'dp-clip': { type: 'string', value: 'C',
    help: "client-level differential privacy: clip each client's whole update (L2 over every module; FedEx: A, B and the effective-weight change) to C, and add Gaussian noise (--dp-noise) to their average" },
  'dp-noise': { type: 'string', value: 'σ', help: 'DP noise multiplier: noise of std σ·C/m on every released coordinate, m = clients sampled per round (0: clipping only, no privacy)' },
  'dp-delta': { type: 'string', value: 'δ', help: 'δ of the (ε, δ) reported after every round; keep it well below 1/(number of clients)', default: String(DEFAULT_DP_DELTA) },
};

const NAMES = Object.keys(DP_FLAGS);

/** True when any --dp-* flag is given. */
export function hasPrivacyFlags(args: ParsedArgs): boolean {
  return NAMES.some((n) => args.values[n] !== undefined);
}

/**
 * The DP settings from the flags, or undefined when none is given. `--dp-clip` turns DP on and
 * needs `--dp-noise`; the others need `--dp-clip`. `conflicts` names flags given that DP cannot be
 * combined with (e.g. `--weighting examples`).
 */
export function privacyFlags(args: ParsedArgs, command: string, conflicts: readonly string[] = []): PrivacyConfig | undefined {
  if (!hasPrivacyFlags(args)) return undefined;
  if (args.values['dp-clip'] === undefined) {
    const given = NAMES.filter((n) => args.values[n] !== undefined).map((n) => `--${n}`).join(' and ');
    throw usageError(`fedex ${command}: ${given} needs --dp-clip C (client-level DP clips each client's update to norm C, then adds noise of std σ·C/m).`);
  }
  if (args.values['dp-noise'] === undefined) throw usageError(`fedex ${command}: --dp-clip needs --dp-noise σ, the noise multiplier (0: clipping only, with no privacy guarantee).`);
  if (conflicts.length > 0) {
    throw usageError(`fedex ${command}: client-level DP (--dp-clip) cannot be combined with ${conflicts.join(', ')}: the noise is calibrated to the uniform mean of the clipped updates and the exact residual.`);
  }
  const clip = numberFlag(args, 'dp-clip', command, 1, { min: 0 });
  if (clip === 0) throw usageError(`fedex ${command}: --dp-clip must be a number > 0, got '${optionalString(args, 'dp-clip')}'.`);
  const noiseMultiplier = numberFlag(args, 'dp-noise', command, 1, { min: 0 });
  const delta = numberFlag(args, 'dp-delta', command, DEFAULT_DP_DELTA);
  if (!(delta > 0 && delta < 1)) throw usageError(`fedex ${command}: --dp-delta must be a number in (0, 1), got '${optionalString(args, 'dp-delta')}'.`);
  return { clip, noiseMultiplier, delta };
}

/** ε as text: `∞` when there is no bound. */
export function epsilonText(epsilon: number | null): string {
  return epsilon === null ? '∞' : formatNumber(epsilon, 4);
}

/** δ as text: `1e-5` rather than `0.00001`. */
export function deltaText(delta: number): string {
  return delta < 1e-3 ? delta.toExponential() : String(delta);
}

/** The settings line printed when a federation with DP starts. */
export function privacyBanner(p: PrivacyPlan): string {
  return `client-level DP: each client's update clipped to L2 norm ${formatNumber(p.clip)}, noise multiplier ${formatNumber(p.noiseMultiplier)} (std σ·C/m on every released coordinate, m = clients sampled); `
    + `ε reported at δ = ${deltaText(p.delta)} with sampling rate 1: the coordinator's seeded fixed-size sampling is not Poisson sampling, so no amplification by sampling is claimed`
    + `${p.noiseMultiplier === 0 ? '; noise multiplier 0: clipping only, NO privacy guarantee' : ''}`;
}

/** `, DP ε = 1.23 (δ = 1e-05) after 2 rounds, 1 of 3 updates clipped` for a round line. */
export function privacyNote(p: RoundPrivacy): string {
  const spent = `ε = ${epsilonText(p.epsilon)} (δ = ${deltaText(p.delta)}) after ${p.releases} round${p.releases === 1 ? '' : 's'}`;
  if (!p.released) return `, DP: nothing released this round, ${spent}`;
  return `, DP ${spent}, ${p.clipped} of ${p.updateNorms.length} update${p.updateNorms.length === 1 ? '' : 's'} clipped`;
}
