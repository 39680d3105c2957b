/**
 * The bridge between the server loop and the pure strategy: runs a round's accepted updates
 * through the strategy module by module (streaming, one module's update alive at a time), folds
 * each FedEx base update into the coordinator's float32 master copy, and records the step in the
 * form it will travel: factored (P, Q) when (out + in)·inner < out·in, else dense D = s·P·Q —
 * applied to the master exactly as clients will apply it, so both ends hold the same bits. The
 * strategy runs without its own deviation metrics; metrics.ts computes them at bounded cost.
 */
import type { LoraFactors } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import type { AggregationStrategy, ClientFailure, ModuleGlobalState } from '../../core/strategies/types.js';
import { aggregateModules, type ClientAdapterResult } from '../../core/strategies/round.js';
import type { Matrix } from '../../core/tensor.js';
import { chooseResidualForm } from '../protocol/adapterTensors.js';
import { addDense, moduleLayout } from '../client/baseCopy.js';
import { moduleSpecs, type FederationPlan } from './config.js';
import type { ModuleRoundRecord } from './events.js';
import { moduleNorms } from './metrics.js';
import type { StepModule } from './residuals.js';

/** One accepted client update. */
export interface AcceptedUpdate {
  readonly clientId: string;
  readonly adapter: ReadonlyMap<string, LoraFactors>;
  readonly numExamples: number;
  readonly trainLoss: number;
}

/** What a round's aggregation produced. */
export interface RoundAggregate {
  readonly global: Map<string, LoraFactors>;
  /** Modules whose base changed this round (empty for FedIT/FFA, or when the residual vanished). */
  readonly stepModules: StepModule[];
  readonly modules: ModuleRoundRecord[];
  /** Normalised weight of each participant, in `updates` order. */
  readonly weights: readonly number[];
  readonly loss: { mean: number; min: number; max: number };
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/**
 * Aggregates `updates` (already validated; order fixes the float summation order, so callers sort
 * them) and applies the base updates to `base` in place. Returns null when the strategy finds
 * nothing usable.
 */
export async function aggregateRound(
  plan: FederationPlan,
  strategy: AggregationStrategy,
  round: number,
  global: ReadonlyMap<string, LoraFactors>,
  base: Map<string, Matrix<Float32Array>>,
  updates: readonly AcceptedUpdate[],
  failures: readonly ClientFailure[],
  backend: ProductBackend,
): Promise<RoundAggregate | null> {
  const specs = moduleSpecs(plan);
  const globals: ModuleGlobalState[] = specs.map((spec) => ({ spec, factors: global.get(spec.name) ?? null }));
  const results: ClientAdapterResult[] = updates.map((u, i) => ({ client: i, clientId: u.clientId, numExamples: u.numExamples, modules: u.adapter }));
  const stream = aggregateModules(strategy, round, globals, results, failures);
  if (stream === null) return null;
  const newGlobal = new Map<string, LoraFactors>();
  const stepModules: StepModule[] = [];
  const modules: ModuleRoundRecord[] = [];
  let weights: readonly number[] = [];
  const byName = new Map(plan.layout.map((m) => [m.module, m]));
  for (const agg of stream) {
    const name = agg.global.spec.name;
    const m = byName.get(name)!;
    newGlobal.set(name, agg.global.factors!);
    weights = agg.metrics.weights;
    let form: 'factored' | 'dense' | null = null;
    let inner = 0;
    let scaledResidual: Matrix<Float32Array> | undefined;
    const u = agg.baseUpdate;
    if (u !== null) {
      const target = base.get(name)!;
      inner = u.p.shape[1];
      form = chooseResidualForm(m.out, m.in, inner);
      if (form === 'factored') {
        await backend.addScaledProduct(target, moduleLayout(m), u.p, u.q, u.scale);
        stepModules.push({ module: name, form, scale: u.scale, p: u.p, q: u.q });
      } else {
        // Dense travels as D = s·P·Q (scale 1), and the master gets exactly D: the same bits as clients.
        const d: Matrix<Float32Array> = { shape: [m.out, m.in], data: new Float32Array(m.out * m.in) };
        await backend.addScaledProduct(d, 'linear', u.p, u.q, u.scale);
        addDense(target, moduleLayout(m), d, 1);
        stepModules.push({ module: name, form, scale: 1, d });
        scaledResidual = d;
      }
    }
    const scale = agg.metrics.scale;
    const norms = plan.deviationMetrics
      ? await moduleNorms({ out: m.out, in: m.in, scale, clients: updates.map((x) => x.adapter.get(name)!), weights, global: agg.global.factors!, scaledResidual }, backend)
      : { deviationNorm: NaN, relativeDeviation: NaN };
    modules.push({
      module: name,
      deviation: finiteOrNull(norms.deviationNorm),
      relativeDeviation: finiteOrNull(norms.relativeDeviation),
      residualNorm: finiteOrNull(scale === 0 ? NaN : norms.deviationNorm / Math.abs(scale)),
      residualForm: form,
      residualInnerDim: inner,
    });
  }
  let mean = 0;
  let min = Infinity;
  let max = -Infinity;
  updates.forEach((u, i) => {
    mean += weights[i] * u.trainLoss;
    min = Math.min(min, u.trainLoss);
    max = Math.max(max, u.trainLoss);
  });
  return { global: newGlobal, stepModules, modules, weights, loss: { mean, min, max } };
}
