/**
 * The coordinator's round under client-level DP (docs/math.md §4, docs/security.md): clip each
 * participant's whole update (every module, every part its method releases) to norm C, average
 * with the fixed denominator m (the clients the round sampled), add N(0, (σC/m)²) to every released
 * coordinate (core/privacy/privateAggregate.ts), fold FedEx's noisy dense step into the master
 * base, and account for it: one more composition of the Gaussian mechanism with sampling rate 1.
 * The count of rounds released lives in the persisted history (`RoundRecord.privacy`), so a resumed
 * coordinator continues the accountant where it stopped.
 */
import { gaussianPrivacySpent } from '../../core/privacy/accountant.js';
import { clipFactor, moduleUpdateNorms } from '../../core/privacy/clientUpdate.js';
import { createSecureGaussianSource, type GaussianSource } from '../../core/privacy/noise.js';
import { privateModuleAggregate } from '../../core/privacy/privateAggregate.js';
import { specScaling, type LoraFactors } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import { isAllZero, type Matrix } from '../../core/tensor.js';
import { moduleLayout } from '../shared/baseWeights.js';
import { addDense } from '../../core/baseChange.js';
import type { AcceptedUpdate, RoundAggregate } from './aggregate.js';
import { moduleSpecs, type FederationPlan } from './config.js';
import type { ModuleRoundRecord, RoundPrivacy, RoundRecord } from './events.js';
import type { PrivacyPlan } from './privacyPlan.js';
import type { StepModule } from './residuals.js';
import type { PrivateParts } from '../../core/privacy/clientUpdate.js';
import { adapterDrift } from './roundFigures.js';

/** The sampling rate the accountant uses: the coordinator's seeded fixed-size sampling is not Poisson sampling. */
export const DP_SAMPLING_RATE = 1;

/** What clipping did to one round's participants. */
export interface ClippedUpdates {
  /** ‖v_i‖₂ before clipping. */
  readonly norms: number[];
  /** γ_i = min(1, C/‖v_i‖). */
  readonly factors: number[];
}

/** The parts of an update the plan's method releases (resolvePrivacy refuses flora). */
function privateParts(plan: FederationPlan): PrivateParts {
  if (plan.method === 'flora' || plan.method === 'fedsb') throw new RangeError(`client-level DP is not implemented for ${plan.method}`);
  return plan.method;
}

/** The norms of each participant's whole update (all modules, the parts its method releases) and their clipping factors. */
export function clipUpdates(plan: FederationPlan, clip: number, global: ReadonlyMap<string, LoraFactors>, updates: readonly AcceptedUpdate[]): ClippedUpdates {
  const specs = moduleSpecs(plan);
  const norms = updates.map((u, i) => {
    let sq = 0;
    for (const spec of specs) {
      const g = global.get(spec.name);
      if (g === undefined) throw new RangeError(`client-level DP: the global adapter has no module '${spec.name}'`);
      const f = u.adapter.get(spec.name);
      if (f === undefined) throw new RangeError(`client-level DP: ${u.clientId} sent no factors for module '${spec.name}'`);
      const n = moduleUpdateNorms(spec, specScaling(spec), g, f, privateParts(plan), i, u.clientId);
      sq += n.a + n.b + n.product;
    }
    return Math.sqrt(sq);
  });
  return { norms, factors: norms.map((n) => clipFactor(n, clip)) };
}

/**
 * Aggregates one round privately and folds FedEx's noisy step into `base` in place. `sampled` is
 * m, the fixed denominator (at least the number of updates: a sampled client that delivered
 * nothing contributes a zero update). The new global model is W0 + s·B̄_gĀ_g + Ū (FedEx) with Ū the
 * noisy mean of the clipped updates; FedIT and FFA-LoRA release only the factors.
 */
export async function aggregatePrivateRound(
  plan: FederationPlan,
  privacy: PrivacyPlan,
  global: ReadonlyMap<string, LoraFactors>,
  base: Map<string, Matrix<Float32Array>>,
  updates: readonly AcceptedUpdate[],
  sampled: number,
  backend: ProductBackend,
  noise: GaussianSource,
): Promise<{ aggregate: RoundAggregate; clipping: ClippedUpdates; noiseStd: number }> {
  if (updates.length === 0) throw new RangeError('client-level DP: no update to aggregate');
  if (!(Number.isInteger(sampled) && sampled >= updates.length)) throw new RangeError(`client-level DP: the denominator (clients sampled) must be an integer ≥ the ${updates.length} updates, got ${sampled}`);
  const clipping = clipUpdates(plan, privacy.clip, global, updates);
  const coefficients = clipping.factors.map((g) => g / sampled);
  const noiseStd = (privacy.noiseMultiplier * privacy.clip) / sampled;
  const newGlobal = new Map<string, LoraFactors>();
  const stepModules: StepModule[] = [];
  const modules: ModuleRoundRecord[] = [];
  const specs = moduleSpecs(plan);
  for (const [k, spec] of specs.entries()) {
    const m = plan.layout[k];
    const previous = global.get(spec.name)!;
    const clients = updates.map((u) => u.adapter.get(spec.name)!);
    const agg = await privateModuleAggregate({
      spec,
      scale: specScaling(spec),
      global: previous,
      clients,
      coefficients,
      noiseStd,
      parts: privateParts(plan),
      clientIds: updates.map((u) => u.clientId),
    }, noise, backend);
    let step: StepModule | null = null;
    if (agg.baseUpdate !== null && !isAllZero(agg.baseUpdate.data)) {
      const target = base.get(spec.name);
      if (target === undefined) throw new RangeError(`client-level DP: the master base has no weight for module '${spec.name}'`);
      step = { module: spec.name, form: 'dense', scale: 1, d: agg.baseUpdate };
      // Clients apply the same D with scale 1 (residuals.ts): both ends hold the same bits.
      addDense(target, moduleLayout(m), agg.baseUpdate, 1);
      stepModules.push(step);
    }
    newGlobal.set(spec.name, agg.factors);
    // Deviation figures describe plain averaging's loss; under DP the base step is the noisy residual instead.
    modules.push({
      module: spec.name,
      deviation: null,
      relativeDeviation: null,
      residualNorm: null,
      residualForm: step === null ? null : 'dense',
      residualInnerDim: 0,
      ...adapterDrift(previous, agg.factors, clients),
    });
  }
  let mean = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const u of updates) {
    mean += u.trainLoss / updates.length;
    min = Math.min(min, u.trainLoss);
    max = Math.max(max, u.trainLoss);
  }
  return { aggregate: { global: newGlobal, stepModules, modules, weights: coefficients, loss: { mean, min, max } }, clipping, noiseStd };
}

/**
 * A federation's DP bookkeeping on the coordinator: the noise source (node:crypto unless a test
 * injects one) and the count of rounds released, recovered from the persisted history on resume.
 */
export class PrivacyLedger {
  private releases: number;
  private round: { released: boolean; denominator: number; noiseStd: number; clipping: ClippedUpdates | null } = { released: false, denominator: 0, noiseStd: 0, clipping: null };

  constructor(
    private readonly plan: FederationPlan,
    private readonly privacy: PrivacyPlan,
    history: readonly Pick<RoundRecord, 'privacy'>[],
    private readonly noise: GaussianSource = createSecureGaussianSource(),
  ) {
    this.releases = history.filter((r) => r.privacy?.released === true).length;
  }

  /** Starts a round's bookkeeping (nothing released yet). */
  begin(sampled: number): void {
    this.round = { released: false, denominator: sampled, noiseStd: 0, clipping: null };
  }

  /** Runs the private aggregation; the round counts as released from here on, whatever follows (a rollback decides on the noisy result). */
  async aggregate(global: ReadonlyMap<string, LoraFactors>, base: Map<string, Matrix<Float32Array>>, updates: readonly AcceptedUpdate[], backend: ProductBackend): Promise<RoundAggregate> {
    this.releases++;
    this.round = { ...this.round, released: true, noiseStd: (this.privacy.noiseMultiplier * this.privacy.clip) / this.round.denominator };
    const done = await aggregatePrivateRound(this.plan, this.privacy, global, base, updates, this.round.denominator, backend, this.noise);
    this.round = { ...this.round, clipping: done.clipping };
    return done.aggregate;
  }

  /** The round's figures and the ε spent so far. */
  figures(): RoundPrivacy {
    const p = this.privacy;
    const spent = gaussianPrivacySpent({ samplingRate: DP_SAMPLING_RATE, noiseMultiplier: p.noiseMultiplier, rounds: this.releases, delta: p.delta });
    const norms = this.round.clipping?.norms ?? [];
    return {
      epsilon: Number.isFinite(spent.epsilon) ? spent.epsilon : null,
      delta: p.delta,
      order: spent.order,
      releases: this.releases,
      released: this.round.released,
      samplingRate: DP_SAMPLING_RATE,
      clip: p.clip,
      noiseMultiplier: p.noiseMultiplier,
      denominator: this.round.denominator,
      noiseStd: this.round.noiseStd,
      clipped: this.round.clipping?.factors.filter((g) => g < 1).length ?? 0,
      updateNorms: norms,
    };
  }
}
