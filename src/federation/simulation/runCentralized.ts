/**
 * The centralized reference of a simulation: one trainer on the pooled data of all clients, with
 * the same budget as the federation — per "round" k × localSteps steps of the same batch size (as
 * many examples as the k clients see together) — starting from the same initial adapter, its
 * optimizer state kept across rounds (one continuous run), evaluated after every round like the
 * global models of the federated methods. No network, no aggregation.
 */
import type { LoraFactors } from '../../core/lora.js';
import type { Matrix } from '../../core/tensor.js';
import { resolvePlan } from '../coordinator/config.js';
import { initialAdapter } from '../coordinator/initialState.js';
import type { BaseUpdateInfo, TrainConfig } from '../client/trainer.js';
import type { Adapter } from '../../core/lora.js';
import type { EventSink } from '../events/eventSink.js';
import { initialRound, summarize, type MethodReport, type RoundReport } from './report.js';
import { progressThrottle } from './runFederated.js';
import type { EvalMetrics, SimulationHyperparameters, SimulationWorkload, StepProgress } from './workload.js';

/** Settings of the centralized run (the federation's, for a like-for-like budget). */
export interface CentralizedRunOptions extends SimulationHyperparameters {
  readonly workload: SimulationWorkload;
  readonly sink: EventSink;
  readonly initial: EvalMetrics;
  readonly onRound?: (round: RoundReport) => void;
  readonly onStep?: (clientId: string, p: StepProgress) => void;
  readonly signal?: AbortSignal;
}

/** The id under which the centralized trainer reports progress. */
export const CENTRALIZED_ID = 'centralized';

/** The initial global adapter of a federation with these settings (what the coordinator sends in round 1). */
export function federationInitialAdapter(workload: SimulationWorkload, o: { rank: number; alpha: number; seed: number; lr: number; batchSize: number; localSteps: number }): Map<string, LoraFactors> {
  return initialAdapter(resolvePlan({
    runDir: '',
    method: 'fedex',
    rounds: 1,
    layout: workload.layout,
    base: workload.base,
    lora: { rank: o.rank, alpha: o.alpha, targetModules: workload.targetModules },
    training: { localSteps: o.localSteps, batchSize: o.batchSize, lr: o.lr },
    seed: o.seed,
  }));
}

/** Runs the centralized reference and returns its report. */
export async function runCentralized(o: CentralizedRunOptions): Promise<MethodReport> {
  const started = performance.now();
  const method = 'centralized';
  const steps = o.clients * o.localSteps;
  const progress = progressThrottle((clientId, p) => o.sink.emit('client_progress', { method, clientId, ...p }, method));
  const trainer = o.workload.createTrainer(null, (p) => {
    progress(CENTRALIZED_ID, p);
    o.onStep?.(CENTRALIZED_ID, p);
  });
  const base: ReadonlyMap<string, Matrix<Float32Array>> = await o.workload.base.load(o.workload.layout);
  const info: BaseUpdateInfo = { revision: 0, fromRevision: null, updatedModules: [], modules: base };
  const config: TrainConfig = {
    method: 'fedit',
    rounds: o.rounds,
    localSteps: steps,
    batchSize: o.batchSize,
    rank: o.rank,
    alpha: o.alpha,
    rsLora: false,
    targetModules: [...o.workload.targetModules],
    lr: o.lr,
    seed: o.seed,
    weighting: 'uniform',
    resetOptimizer: false,
    uplinkDtype: 'float32',
    baseModelHash: o.workload.base.hash,
    layout: o.workload.layout.map((m) => ({ module: m.module, in: m.in, out: m.out, rank: m.rank, fanInFanOut: m.fanInFanOut === true })),
    timeLimitMs: 0,
    clientName: CENTRALIZED_ID,
  };
  let adapter: Adapter = federationInitialAdapter(o.workload, o);
  const rounds: RoundReport[] = [initialRound(o.initial)];
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(o.signal?.reason);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (let round = 1; round <= o.rounds; round++) {
      const t0 = performance.now();
      const result = await trainer.train(round, adapter, info, config, controller.signal);
      adapter = result.adapter;
      const seconds = (performance.now() - t0) / 1000;
      o.sink.emit('client_round_done', { method, clientId: CENTRALIZED_ID, round, trainLoss: result.trainLoss, examples: result.numExamples, steps: result.steps ?? steps, seconds }, method);
      const evaluation = await o.workload.evaluate(adapter, base);
      const row: RoundReport = {
        round,
        evalLoss: evaluation.loss,
        evalAccuracy: evaluation.accuracy,
        exactMatch: evaluation.exactMatch,
        trainLoss: result.trainLoss,
        participants: 1,
        bytesSent: 0,
        bytesReceived: 0,
        seconds,
        meanRelativeDeviation: null,
        layers: [],
        modules: [],
      };
      rounds.push(row);
      o.sink.emit('round_evaluated', { method, round, evalLoss: evaluation.loss, evalAccuracy: evaluation.accuracy, exactMatch: evaluation.exactMatch }, method);
      o.onRound?.(row);
    }
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    await trainer.dispose?.();
  }
  const seconds = (performance.now() - started) / 1000;
  return { method, summary: summarize(method, rounds, seconds), rounds, runDir: null, adaptersDir: null };
}
