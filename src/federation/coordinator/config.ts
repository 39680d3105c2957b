/**
 * The coordinator's settings: what the operator gives (`CoordinatorConfig`), the part that is
 * persisted in the run directory and fixed for the whole federation (`FederationPlan`), and the
 * pure helpers that derive the round's sample size and quorum from it.
 */
import { loraScaling, type LoraModuleSpec } from '../../core/lora.js';
import { STRATEGY_NAMES, type StrategyName } from '../../core/strategies/types.js';
import { createStrategy, isStrategyName } from '../../core/strategies/registry.js';
import { checkAggregationRule, isRobustRule, ruleLabel, ruleProblem, type AggregationRule } from '../../core/robust.js';
import type { ProductBackend } from '../../core/product.js';
import type { AdapterLayout } from '../protocol/adapterTensors.js';
import { DEFAULT_LIMITS } from '../protocol/constants.js';
import type { FloatWireDType } from '../protocol/dtypes.js';
import type { ParamsOf } from '../protocol/messages.js';
import { moduleLayout, type BaseSource } from '../shared/baseWeights.js';
import type { Adapter } from '../../core/lora.js';
import type { ServerTlsOptions } from '../transport/types.js';
import type { IncrementalMode } from './accumulator.js';
import { admissionSettings, AUTH_MAX_BACKOFF_MS, type AdmissionLimitSettings } from './admissionLimits.js';
import { CoordinatorError } from './errors.js';
import { resolvePrivacy, type PrivacyConfig, type PrivacyPlan } from './privacyPlan.js';

/** How many of a round's sampled clients must deliver for it to aggregate. */
export type Quorum = { readonly fraction: number } | { readonly count: number };

/** Where and how the coordinator listens. */
export interface ListenOptions {
  /** Default 127.0.0.1 (loopback only). */
  readonly host?: string;
  /** Default 0 (ephemeral). */
  readonly port?: number;
  readonly path?: string;
  /** Serve wss:// with this certificate. */
  readonly tls?: ServerTlsOptions;
}

/** Settings persisted with the run and fixed for the whole federation. */
export interface FederationPlan {
  readonly method: StrategyName;
  readonly rounds: number;
  readonly layout: AdapterLayout;
  readonly lora: { readonly rank: number; readonly alpha: number; readonly rsLora: boolean; readonly targetModules: readonly string[] };
  readonly training: { readonly localSteps?: number; readonly localEpochs?: number; readonly batchSize: number; readonly lr: number; readonly resetOptimizer: boolean };
  readonly baseModelHash: string;
  readonly weighting: 'uniform' | 'examples';
  readonly minClients: number;
  readonly maxClients: number;
  readonly quorum: Quorum;
  readonly roundTimeoutMs: number;
  readonly sampleFraction: number;
  readonly seed: number;
  readonly uplinkDtype: FloatWireDType;
  readonly maxUpdateNorm?: number;
  /** Bound on ‖update − global‖₂ as a multiple of ‖global‖₂ each round (0: none); absent in plans persisted before it existed: the default. */
  readonly maxUpdateRatio?: number;
  /** Most examples a client's update is counted with (null: no bound); absent in older plans: none. */
  readonly maxExamples?: number | null;
  readonly residualForm: 'stacked' | 'compact';
  /** FedEx with each round's residual truncated to this rank (the paper's "best inexact" variant); absent: exact. */
  readonly residualRank?: number;
  readonly deviationMetrics: boolean;
  /** The limits before authentication (`AdmissionLimitSettings`) are absent in plans persisted before they existed: defaults. */
  readonly limits: { readonly maxFrameBytes: number; readonly heartbeatMs: number; readonly helloTimeoutMs: number; readonly maxProtocolErrors: number } & Partial<AdmissionLimitSettings>;
  /** Emit `update_heatmap` after every aggregated round (absent in plans persisted before it existed: on). */
  readonly updateHeatmap?: boolean;
  /** Accumulate uploads as they arrive (accumulator.ts); absent: `auto`. */
  readonly incrementalAggregation?: IncrementalMode;
  /** Client-level differential privacy (privacyPlan.ts, docs/security.md); absent: off. */
  readonly privacy?: PrivacyPlan;
  /** A robust aggregation rule (core/robust.ts); absent (and in plans persisted before it existed): the weighted mean. */
  readonly aggregation?: AggregationRule;
  /** Ranks below lora.rank that clients may train at (heterogeneous ranks, core/clientRanks.ts), ascending; absent: every client at lora.rank. */
  readonly clientRanks?: readonly number[];
}

/** What the operator gives to start a federation. */
export interface CoordinatorConfig {
  /** Directory for state, tensors and the event log; must not hold another run. */
  readonly runDir: string;
  readonly method: StrategyName;
  readonly rounds: number;
  /** Adapted modules in wire order (names, in/out, rank, fanInFanOut). */
  readonly layout: AdapterLayout;
  readonly lora: { readonly rank: number; readonly alpha: number; readonly rsLora?: boolean; readonly targetModules: readonly string[] };
  readonly training: { readonly localSteps?: number; readonly localEpochs?: number; readonly batchSize: number; readonly lr: number; readonly resetOptimizer?: boolean };
  /** The pristine base: content hash and the adapted modules' float32 weights (stored layout). */
  readonly base: BaseSource;
  /** Client weights (default `uniform`, as in the paper). */
  readonly weighting?: 'uniform' | 'examples';
  /** Joined clients needed before a round starts (default 1). */
  readonly minClients?: number;
  /** Most clients joined at once; more get `E_FULL` (default 1000). */
  readonly maxClients?: number;
  /** Default `{ fraction: 0.5 }` of the sampled clients (at least 1). */
  readonly quorum?: Quorum;
  /** From round_start to the deadline (default 600 000 ms). */
  readonly roundTimeoutMs?: number;
  /** Fraction of the joined clients sampled per round, seeded (default 1). */
  readonly sampleFraction?: number;
  /** Seed of the sampling and of the initial adapter (default 0). */
  readonly seed?: number;
  /** Join token; generated when absent (read it back from `coordinator.token`). */
  readonly token?: string;
  /** Dtype clients upload in when they support it (default float32). */
  readonly uplinkDtype?: FloatWireDType;
  /** Bound on ‖update − global‖₂ over a whole client update; none by default. */
  readonly maxUpdateNorm?: number;
  /**
   * Bound on ‖update − global‖₂ as a multiple of the round's ‖global‖₂ (default {@link DEFAULT_MAX_UPDATE_RATIO};
   * 0 turns it off): a finite but absurd update (a poisoning attempt, a diverged client) is rejected
   * with E_NORM_BOUND before it is acknowledged.
   */
  readonly maxUpdateRatio?: number;
  /**
   * Most examples an update is counted with: the coordinator, not the client, bounds the example
   * count that `examples` weighting uses (default: localSteps × batchSize, what a client can see in a
   * round; none with localEpochs). A larger report is counted as this and a warning names the client.
   */
  readonly maxExamples?: number;
  /** FedEx residual factoring (default `stacked`). */
  readonly residualForm?: 'stacked' | 'compact';
  /** FedEx only: fold the best rank-k approximation of each round's residual (smaller downlink, inexact, the loss reported). */
  readonly residualRank?: number;
  /** Compute per-module deviation norms (default true; O(k²r²(in+out)) per module). */
  readonly deviationMetrics?: boolean;
  /** Emit an `update_heatmap` event after every aggregated round (default true; computed after the broadcast). */
  readonly updateHeatmap?: boolean;
  /** Aggregate during the uploads where the residual travels dense (default `auto`: large modules only; see accumulator.ts). */
  readonly incrementalAggregation?: IncrementalMode;
  /** Client-level DP: clip each client's update to `clip`, add Gaussian noise of multiplier `noiseMultiplier`, report ε at `delta` (privacyPlan.ts). */
  readonly privacy?: PrivacyConfig;
  /**
   * Coordinate-wise `median` or `trimmed-mean` of the uploads instead of the mean (default `mean`):
   * unweighted, so not with `examples` weighting; FedEx's base update is then dense (docs/math.md §1.2).
   */
  readonly aggregation?: AggregationRule;
  /** Adapter of round 1; default A Kaiming-uniform from `seed`, B = 0 (PEFT's init). */
  readonly initialAdapter?: Adapter;
  /**
   * Ranks clients may train at besides lora.rank (`fedex host --ranks 4,8,16`): a client names its rank
   * in its hello (protocol 1.3) and starts each round from the global adapter truncated to it. Needs
   * a method that folds the truncation into the base (fedex, flora); not with DP or a robust rule.
   */
  readonly clientRanks?: readonly number[];
  /**
   * Frame size, heartbeat, hello timeout, protocol errors; and the limits before authentication
   * (docs/protocol.md §13, defaults in `DEFAULT_ADMISSION_LIMITS`): connections in total
   * (`maxConnections`, at least `maxClients`) and unauthenticated ones per address
   * (`maxPendingPerAddress`), the message size before the hello is accepted
   * (`preAuthMaxFrameBytes`), failed joins per address before it must wait (`authFailuresPerAddress`,
   * first wait `authBackoffMs`, doubling), rejections logged one by one per address and minute
   * (`rejectionsLoggedPerAddress`).
   */
  readonly limits?: { readonly maxFrameBytes?: number; readonly heartbeatMs?: number; readonly helloTimeoutMs?: number; readonly maxProtocolErrors?: number } & Partial<AdmissionLimitSettings>;
  readonly listen?: ListenOptions;
  /** Fused base updates (default: onnxruntime). */
  readonly backend?: ProductBackend;
}

function fail(message: string): never {
  throw new CoordinatorError('CONFIG_INVALID', `coordinator config: ${message}`);
}

function positiveInt(name: string, v: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(v) || v < 1 || v > max) fail(`${name} must be an integer in 1..${max}, got ${v}`);
  return v;
}

/**
 * Default bound on an update's distance from the global adapter, as a multiple of the global
 * adapter's norm. Honest local training moves an adapter by about its own norm (measured on the
 * built-in task: ratios near 1 after 10 steps); a 1e19-valued upload is 1e18 times over.
 */
export const DEFAULT_MAX_UPDATE_RATIO = 1000;

/** Fills in defaults and checks every setting; throws `CONFIG_INVALID` naming the first bad one. */
export function resolvePlan(config: CoordinatorConfig): FederationPlan {
  const t = config.training;
  if ((t.localSteps === undefined) === (t.localEpochs === undefined)) fail('give exactly one of training.localSteps and training.localEpochs');
  if (t.localSteps !== undefined) positiveInt('training.localSteps', t.localSteps, 100_000_000);
  if (t.localEpochs !== undefined && !(t.localEpochs > 0 && t.localEpochs <= 10_000)) fail(`training.localEpochs must be in (0, 10000], got ${t.localEpochs}`);
  if (!(t.lr > 0 && t.lr <= 10)) fail(`training.lr must be in (0, 10], got ${t.lr}`);
  positiveInt('training.batchSize', t.batchSize, 65_536);
  if (!isStrategyName(config.method)) fail(`method must be one of ${STRATEGY_NAMES.join(', ')}, got '${String(config.method)}'`);
  positiveInt('rounds', config.rounds, 1_000_000);
  if (config.layout.length === 0) fail('layout is empty');
  const names = new Set<string>();
  for (const m of config.layout) {
    if (names.has(m.module)) fail(`layout lists module ${m.module} twice`);
    names.add(m.module);
    positiveInt(`layout ${m.module}: in`, m.in, 1 << 24);
    positiveInt(`layout ${m.module}: out`, m.out, 1 << 24);
    positiveInt(`layout ${m.module}: rank`, m.rank, 4096);
  }
  if (!(config.lora.alpha > 0)) fail(`lora.alpha must be > 0, got ${config.lora.alpha}`);
  if (createStrategy(config.method).frozenA === true && (config.uplinkDtype ?? 'float32') !== 'float32') {
    // A frozen A is compared bit for bit; a half-precision uplink would round it, so every upload would differ from the global A.
    fail(`method ${config.method} needs a float32 uplink (A is frozen and compared bit for bit), got uplinkDtype ${String(config.uplinkDtype)}`);
  }
  positiveInt('lora.rank', config.lora.rank, 4096);
  if (!/^[0-9a-f]{64}$/.test(config.base.hash)) fail(`base.hash must be 64 lower-case hex digits, got '${config.base.hash}'`);
  const minClients = positiveInt('minClients', config.minClients ?? 1);
  const maxClients = positiveInt('maxClients', config.maxClients ?? 1000);
  if (maxClients < minClients) fail(`maxClients ${maxClients} is below minClients ${minClients}`);
  const quorum = config.quorum ?? { fraction: 0.5 };
  if ('fraction' in quorum ? !(quorum.fraction > 0 && quorum.fraction <= 1) : !(Number.isInteger(quorum.count) && quorum.count >= 1)) {
    fail(`quorum must be { fraction in (0, 1] } or { count ≥ 1 }, got ${JSON.stringify(quorum)}`);
  }
  const sampleFraction = config.sampleFraction ?? 1;
  if (!(sampleFraction > 0 && sampleFraction <= 1)) fail(`sampleFraction must be in (0, 1], got ${sampleFraction}`);
  const seed = config.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail(`seed must be an integer in 0..4294967295, got ${seed}`);
  if (config.maxUpdateNorm !== undefined && !(config.maxUpdateNorm > 0)) fail(`maxUpdateNorm must be > 0, got ${config.maxUpdateNorm}`);
  if (config.maxUpdateRatio !== undefined && !(config.maxUpdateRatio >= 0 && Number.isFinite(config.maxUpdateRatio))) fail(`maxUpdateRatio must be ≥ 0 (0: off), got ${config.maxUpdateRatio}`);
  if (config.maxExamples !== undefined) positiveInt('maxExamples', config.maxExamples);
  const limits = {
    maxFrameBytes: positiveInt('limits.maxFrameBytes', config.limits?.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes),
    heartbeatMs: positiveInt('limits.heartbeatMs', config.limits?.heartbeatMs ?? 5_000, 3_600_000),
    helloTimeoutMs: positiveInt('limits.helloTimeoutMs', config.limits?.helloTimeoutMs ?? 10_000),
    maxProtocolErrors: positiveInt('limits.maxProtocolErrors', config.limits?.maxProtocolErrors ?? 16),
  };
  if (limits.maxFrameBytes < 4096) fail(`limits.maxFrameBytes must be ≥ 4096, got ${limits.maxFrameBytes}`);
  if (limits.heartbeatMs < 100) fail(`limits.heartbeatMs must be ≥ 100, got ${limits.heartbeatMs}`);
  const admission = resolveAdmissionLimits(config.limits ?? {}, limits.maxFrameBytes, maxClients);
  const residualRank = config.residualRank;
  if (residualRank !== undefined) {
    if (config.method !== 'fedex') fail(`residualRank applies to fedex only, not ${config.method}`);
    positiveInt('residualRank', residualRank);
    if (config.incrementalAggregation === 'always') fail('incrementalAggregation always cannot be combined with residualRank (the accumulated sums give the exact residual only)');
  }
  // The accumulated sums give the exact dense residual: with a truncated residual every module goes through the strategy.
  const clientRanks = resolveClientRanks(config);
  const privacy = config.privacy !== undefined ? resolvePrivacy(config.privacy, { weighting: config.weighting ?? 'uniform', residualRank, method: config.method, clientRanks }) : undefined;
  // The private round forms its own noisy dense step (privateRound.ts): nothing to accumulate.
  const aggregation = resolveAggregation(config, minClients, quorum, sampleFraction);
  // DP's sensitivity C/m is the mean's: a median or trimmed mean of clipped updates needs another analysis.
  if (privacy !== undefined && aggregation !== undefined) fail(`client-level DP cannot be combined with aggregation ${ruleLabel(aggregation)} (the noise is calibrated to the mean of the clipped updates)`);
  // A robust rule needs every upload itself (core/strategies/robust.ts): nothing to accumulate either.
  const incremental = residualRank !== undefined || privacy !== undefined || aggregation !== undefined ? 'off' : config.incrementalAggregation ?? 'auto';
  if (!['auto', 'always', 'off'].includes(incremental)) fail(`incrementalAggregation must be auto, always or off, got '${String(incremental)}'`);
  return {
    method: config.method,
    rounds: config.rounds,
    layout: config.layout.map((m) => ({ module: m.module, in: m.in, out: m.out, rank: m.rank, fanInFanOut: m.fanInFanOut === true })),
    lora: { rank: config.lora.rank, alpha: config.lora.alpha, rsLora: config.lora.rsLora === true, targetModules: [...config.lora.targetModules] },
    training: { ...(t.localSteps !== undefined ? { localSteps: t.localSteps } : { localEpochs: t.localEpochs }), batchSize: t.batchSize, lr: t.lr, resetOptimizer: t.resetOptimizer ?? true },
    baseModelHash: config.base.hash,
    weighting: config.weighting ?? 'uniform',
    minClients,
    maxClients,
    quorum,
    roundTimeoutMs: positiveInt('roundTimeoutMs', config.roundTimeoutMs ?? 600_000),
    sampleFraction,
    seed,
    uplinkDtype: config.uplinkDtype ?? 'float32',
    ...(config.maxUpdateNorm !== undefined ? { maxUpdateNorm: config.maxUpdateNorm } : {}),
    maxUpdateRatio: config.maxUpdateRatio ?? DEFAULT_MAX_UPDATE_RATIO,
    maxExamples: config.maxExamples ?? (t.localSteps !== undefined ? t.localSteps * t.batchSize : null),
    residualForm: config.residualForm ?? 'stacked',
    ...(residualRank !== undefined ? { residualRank } : {}),
    deviationMetrics: config.deviationMetrics ?? true,
    limits: { ...limits, ...admission },
    updateHeatmap: config.updateHeatmap ?? true,
    incrementalAggregation: incremental,
    ...(privacy !== undefined ? { privacy } : {}),
    ...(aggregation !== undefined ? { aggregation } : {}),
    ...(clientRanks !== undefined ? { clientRanks } : {}),
  };
}

/**
 * The client ranks below lora.rank, distinct and ascending (undefined when none): each an integer in
 * 1..lora.rank, for a method that folds a truncated start into the base, and not under a robust rule.
 * lora.rank itself may be listed (it is always allowed) and is dropped.
 */
function resolveClientRanks(config: CoordinatorConfig): number[] | undefined {
  if (config.clientRanks === undefined) return undefined;
  const global = config.lora.rank;
  for (const r of config.clientRanks) {
    if (!Number.isInteger(r) || r < 1 || r > global) fail(`clientRanks: every rank must be an integer in 1..${global} (lora.rank, the global rank), got ${r}`);
  }
  const lower = [...new Set(config.clientRanks)].filter((r) => r < global).sort((a, b) => a - b);
  if (lower.length === 0) return undefined;
  if (createStrategy(config.method).heterogeneousRanks !== true) {
    fail(`clientRanks ${lower.join(', ')}: method ${config.method} cannot take clients below the global rank ${global} exactly; use fedex or flora (they fold each client's truncated start into the base)`);
  }
  if (config.aggregation !== undefined && isRobustRule(config.aggregation)) fail(`clientRanks cannot be combined with aggregation ${ruleLabel(config.aggregation)} (a coordinate-wise rule over zero-padded factors is not defined here)`);
  return lower;
}

/**
 * The robust rule, checked (undefined for the mean): unweighted, not with residualRank, accumulated
 * uploads or privacy, and a trimmed mean must drop someone even in the smallest round the plan can
 * aggregate.
 */
function resolveAggregation(config: CoordinatorConfig, minClients: number, quorum: Quorum, sampleFraction: number): AggregationRule | undefined {
  if (config.aggregation === undefined) return undefined;
  let rule: AggregationRule;
  try {
    rule = checkAggregationRule(config.aggregation);
  } catch (err) {
    fail(`aggregation: ${(err as Error).message}`);
  }
  if (!isRobustRule(rule)) return undefined;
  const label = ruleLabel(rule);
  if ((config.weighting ?? 'uniform') !== 'uniform') fail(`aggregation ${label} is unweighted (every client counts once): it cannot be combined with weighting '${config.weighting}'`);
  if (config.residualRank !== undefined) fail(`residualRank applies to the mean rule only, not to aggregation ${label}`);
  if (config.incrementalAggregation === 'always') fail(`incrementalAggregation always cannot be combined with aggregation ${label} (the accumulated sums give the mean only)`);
  if (config.privacy !== undefined) fail(`privacy (clipping and noise on the mean) cannot be combined with aggregation ${label}`);
  // The fewest updates a round can aggregate: the quorum of the sample drawn from minClients joined clients.
  const fewest = quorumCount(quorum, sampleSize({ sampleFraction, minClients }, minClients));
  const problem = ruleProblem(rule, fewest);
  if (problem !== null) fail(`aggregation ${label}: a round may aggregate as few as ${fewest} update${fewest === 1 ? '' : 's'} (minClients ${minClients}, quorum ${JSON.stringify(quorum)}): ${problem}; raise minClients or the quorum`);
  return rule;
}

/** The limits before authentication with their defaults; `CONFIG_INVALID` naming the first bad one. */
function resolveAdmissionLimits(given: Partial<AdmissionLimitSettings>, maxFrameBytes: number, maxClients: number): AdmissionLimitSettings {
  const s = admissionSettings({ ...given, maxFrameBytes }, maxClients);
  positiveInt('limits.maxConnections', s.maxConnections, 10_000_000);
  if (s.maxConnections < maxClients) fail(`limits.maxConnections (${s.maxConnections}) must be at least maxClients (${maxClients}): joined clients hold connections`);
  positiveInt('limits.maxPendingPerAddress', s.maxPendingPerAddress, s.maxConnections);
  positiveInt('limits.preAuthMaxFrameBytes', s.preAuthMaxFrameBytes, maxFrameBytes);
  if (s.preAuthMaxFrameBytes < 4096) fail(`limits.preAuthMaxFrameBytes must be ≥ 4096 (a hello must fit), got ${s.preAuthMaxFrameBytes}`);
  positiveInt('limits.authFailuresPerAddress', s.authFailuresPerAddress, 1_000_000);
  positiveInt('limits.authBackoffMs', s.authBackoffMs, AUTH_MAX_BACKOFF_MS);
  if (!Number.isInteger(s.rejectionsLoggedPerAddress) || s.rejectionsLoggedPerAddress < 0) fail(`limits.rejectionsLoggedPerAddress must be an integer ≥ 0, got ${s.rejectionsLoggedPerAddress}`);
  return s;
}

/** The core's module specs for the plan's layout (scaling from lora.alpha and each module's rank). */
export function moduleSpecs(plan: FederationPlan): LoraModuleSpec[] {
  return plan.layout.map((m) => ({
    name: m.module,
    inFeatures: m.in,
    outFeatures: m.out,
    rank: m.rank,
    alpha: plan.lora.alpha,
    useRslora: plan.lora.rsLora,
    layout: moduleLayout(m),
  }));
}

/** The LoRA scaling of one module of the plan. */
export function planScaling(plan: FederationPlan, rank: number): number {
  return loraScaling(plan.lora.alpha, rank, plan.lora.rsLora);
}

/** `welcome.config` for a client that uploads in `uplinkDtype` (`clientRanks` only for protocol 1.3 and later). */
export function welcomeConfig(plan: FederationPlan, uplinkDtype: FloatWireDType, minor = 3): ParamsOf<'welcome'>['config'] {
  const t = plan.training;
  return {
    method: plan.method,
    rounds: plan.rounds,
    ...(t.localSteps !== undefined ? { localSteps: t.localSteps } : { localEpochs: t.localEpochs! }),
    batchSize: t.batchSize,
    rank: plan.lora.rank,
    alpha: plan.lora.alpha,
    rsLora: plan.lora.rsLora,
    targetModules: [...plan.lora.targetModules],
    lr: t.lr,
    seed: plan.seed,
    weighting: plan.weighting,
    resetOptimizer: t.resetOptimizer,
    uplinkDtype,
    baseModelHash: plan.baseModelHash,
    layout: plan.layout.map((m) => ({ module: m.module, in: m.in, out: m.out, rank: m.rank, fanInFanOut: m.fanInFanOut === true })),
    ...(plan.clientRanks !== undefined && minor >= 3 ? { clientRanks: [...plan.clientRanks] } : {}),
  };
}

/** Clients sampled out of `available`: max(⌈fraction·n⌉, min(minClients, n)). */
export function sampleSize(plan: Pick<FederationPlan, 'sampleFraction' | 'minClients'>, available: number): number {
  if (available <= 0) return 0;
  return Math.min(available, Math.max(Math.ceil(plan.sampleFraction * available - 1e-9), Math.min(plan.minClients, available)));
}

/** Updates needed to aggregate a round of `sampled` clients: ⌈fraction·sampled⌉ or the count, at least 1, at most `sampled`. */
export function quorumCount(quorum: Quorum, sampled: number): number {
  if (sampled <= 0) return 1;
  const want = 'fraction' in quorum ? Math.ceil(quorum.fraction * sampled - 1e-9) : quorum.count;
  return Math.max(1, Math.min(sampled, want));
}
