/**
 * One federated method of a simulation: a coordinator and k clients in this process, talking over
 * real WebSocket connections on 127.0.0.1, each client training its own share of the data through
 * the workload's trainer. After every round the global model (the coordinator's global adapter and
 * master base) is evaluated on the held-out set. Every coordinator event, client progress and
 * evaluation goes to the event sink, tagged with the method.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProductBackend } from '../../core/product.js';
import type { AggregationRule } from '../../core/robust.js';
import type { StrategyName } from '../../core/strategies/types.js';
import type { FederationClient } from '../client/client.js';
import type { LocalTrainer } from '../client/trainer.js';
import { Coordinator } from '../coordinator/coordinator.js';
import type { CoordinatorEventMap, CoordinatorEventName, RoundRecord } from '../coordinator/events.js';
import type { EventSink } from '../events/eventSink.js';
import type { PrivacyConfig } from '../coordinator/privacyPlan.js';
import { COORDINATOR_EVENT_TYPES } from '../events/events.js';
import { federatedRound, initialRound, summarize, type MethodReport, type RoundReport } from './report.js';
import { AdapterSaver, adapterFields, checkAdapterConfig } from '../shared/adapterFolders.js';
import { recordModelSource } from '../shared/modelSource.js';
import type { EvalMetrics, SimulationHyperparameters, SimulationWorkload, StepProgress } from './workload.js';

/** Settings of one federated run. */
export interface FederatedRunOptions extends SimulationHyperparameters {
  readonly method: StrategyName;
  readonly workload: SimulationWorkload;
  /** The coordinator's run directory (replaced if present). */
  readonly runDir: string;
  /** FedEx only: each round's residual truncated to this rank. */
  readonly residualRank?: number;
  /** A robust aggregation rule (core/robust.ts); absent: the mean. */
  readonly aggregation?: AggregationRule;
  /** Client-level DP (privacyPlan.ts); absent: off. */
  readonly privacy?: PrivacyConfig;
  /** Heterogeneous client ranks: client i trains at clientRanks[i mod n] (≤ `rank`, the global rank; fedex and flora). */
  readonly clientRanks?: readonly number[];
  readonly sink: EventSink;
  /** Fused base updates, shared by the coordinator and the in-process clients. */
  readonly backend: ProductBackend;
  /** Evaluation of the initial model (round 0), shared by all methods. */
  readonly initial: EvalMetrics;
  /** Keep every round's adapters and base here. */
  readonly saveAdaptersDir?: string;
  /** Called after each round's evaluation (for the live table). */
  readonly onRound?: (round: RoundReport, record: RoundRecord) => void;
  /** Called for each training step of a client (for a progress bar). */
  readonly onStep?: (clientId: string, p: StepProgress) => void;
  /** Gives up after this long per round (default 30 min). */
  readonly roundTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Client ids of a simulation: client-1 … client-k. */
export function simulationClientId(index: number): string {
  return `client-${index + 1}`;
}

/** Emits client_progress at most every `ms` per client, and always for a round's last step. */
export function progressThrottle(emit: (clientId: string, p: StepProgress) => void, ms = 250): (clientId: string, p: StepProgress) => void {
  const last = new Map<string, number>();
  return (clientId, p) => {
    const now = Date.now();
    if (p.step < p.totalSteps && now - (last.get(clientId) ?? 0) < ms) return;
    last.set(clientId, now);
    emit(clientId, p);
  };
}

/** Runs one federated method to the end and returns its report. */
export async function runFederated(o: FederatedRunOptions): Promise<MethodReport> {
  const started = performance.now();
  const { method, sink, workload } = o;
  await rm(o.runDir, { recursive: true, force: true });
  const coordinator = await Coordinator.create({
    runDir: o.runDir,
    method,
    rounds: o.rounds,
    layout: workload.layout,
    lora: { rank: o.rank, alpha: o.alpha, targetModules: workload.targetModules },
    training: { localSteps: o.localSteps, batchSize: o.batchSize, lr: o.lr },
    base: workload.base,
    backend: o.backend,
    seed: o.seed,
    minClients: o.clients,
    maxClients: o.clients,
    quorum: { count: o.clients },
    roundTimeoutMs: o.roundTimeoutMs ?? 1_800_000,
    ...(o.residualRank !== undefined ? { residualRank: o.residualRank } : {}),
    ...(o.aggregation !== undefined ? { aggregation: o.aggregation } : {}),
    ...(o.privacy !== undefined ? { privacy: o.privacy } : {}),
    ...(o.clientRanks !== undefined ? { clientRanks: o.clientRanks } : {}),
  });
  // `fedex export` finds the original base through it, as for a hosted run.
  await recordModelSource(o.runDir, workload.modelDir);
  const fields = adapterFields(workload.layout, { rank: o.rank, alpha: o.alpha, targetModules: workload.targetModules }, workload.modelDir);
  // Checked before the first round: a config PEFT could not load fails now, not after the last round.
  if (o.saveAdaptersDir !== undefined) checkAdapterConfig(o.saveAdaptersDir, workload.layout, fields);
  const saver = o.saveAdaptersDir !== undefined ? new AdapterSaver(o.saveAdaptersDir, workload, fields) : undefined;
  for (const type of COORDINATOR_EVENT_TYPES) forward(coordinator, type, sink, method);
  const rounds: RoundReport[] = [initialRound(o.initial)];
  let evaluations: Promise<void> = Promise.resolve();
  let evalError: Error | undefined;
  const initial = coordinator.snapshot();
  saver?.global(0, initial.global, initial.base);
  // Why rounds aggregated nothing, for the error when the run ends short (each reason once).
  const shortfall = new Set<string>();
  coordinator.on('round_closed', (record) => {
    if (!record.aggregated) {
      for (const f of record.failures) shortfall.add(`round ${record.round}: ${f.clientId}: ${f.reason}`);
      return;
    }
    const snap = coordinator.snapshot();
    saver?.global(record.round, snap.global, snap.base);
    evaluations = evaluations.then(async () => {
      const evaluation = await workload.evaluate(snap.global, snap.base);
      const row = federatedRound(record, evaluation);
      rounds.push(row);
      sink.emit('round_evaluated', { method, round: record.round, evalLoss: evaluation.loss, evalAccuracy: evaluation.accuracy, exactMatch: evaluation.exactMatch }, method);
      o.onRound?.(row, record);
    }).catch((err: unknown) => {
      evalError ??= err as Error;
    });
  });

  const progress = progressThrottle((clientId, p) => sink.emit('client_progress', { method, clientId, ...p }, method));
  const trainers: LocalTrainer[] = [];
  const clients: FederationClient[] = [];
  try {
    const url = await coordinator.start();
    for (let i = 0; i < o.clients; i++) {
      const clientId = simulationClientId(i);
      const { client, trainer } = workload.createClient({ index: i, count: o.clients }, { url, token: coordinator.token, name: clientId, clientId, backend: o.backend,
        ...(o.clientRanks !== undefined ? { rank: o.clientRanks[i % o.clientRanks.length] } : {}), reconnect: { maxAttempts: 5 }, ...(o.signal !== undefined ? { signal: o.signal } : {}) }, (p) => {
        progress(clientId, p);
        o.onStep?.(clientId, p);
      });
      trainers.push(trainer);
      client.on('trained', ({ round, result, durationMs }) => {
        sink.emit('client_round_done', { method, clientId, round, trainLoss: result.trainLoss, examples: result.numExamples, steps: result.steps ?? o.localSteps, seconds: durationMs / 1000 }, method);
        saver?.client(round, clientId, result.adapter);
      });
      client.on('training_failed', ({ round, message }) => {
        shortfall.add(`round ${round}: ${clientId}: training failed: ${message}`);
        sink.emit('warning', { message: `${clientId}, round ${round}: training failed: ${message}` }, method);
      });
      clients.push(client);
    }
    const onAbort = (): void => void coordinator.close();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const [summary] = await Promise.all([coordinator.run(), ...clients.map((c) => c.run())]);
      if (summary.roundsCompleted < o.rounds) {
        const why = [...shortfall];
        const listed = why.length === 0 ? '' : ` (${why.slice(0, 5).join('; ')}${why.length > 5 ? `; ${why.length - 5} more` : ''})`;
        throw new Error(`${method}: only ${summary.roundsCompleted} of ${o.rounds} rounds completed${listed}`);
      }
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
    await evaluations;
    if (evalError !== undefined) throw evalError;
    await saver?.flush();
  } finally {
    await coordinator.close();
    for (const c of clients) c.kill();
    await Promise.all(trainers.map((t) => t.dispose?.()));
  }
  const seconds = (performance.now() - started) / 1000;
  return { method, summary: summarize(method, rounds, seconds), rounds, runDir: o.runDir, adaptersDir: o.saveAdaptersDir ?? null };
}

function forward<K extends CoordinatorEventName>(coordinator: Coordinator, type: K, sink: EventSink, method: StrategyName): void {
  const listener = (payload: CoordinatorEventMap[K][0]): void => sink.emit(type, payload as never, method);
  (coordinator.on as (t: K, l: (p: CoordinatorEventMap[K][0]) => void) => Coordinator)(type, listener);
}

/** Where a method's coordinator keeps its run under the simulation's output folder. */
export function methodRunDir(out: string, method: string): string {
  return join(out, 'runs', method);
}
