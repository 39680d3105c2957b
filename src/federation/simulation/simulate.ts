/**
 * `fedex simulate` without the terminal: the same federation — same workload, clients, data split,
 * rounds, steps and initial adapter — run once per method (FedEx-LoRA, FedIT, FFA-LoRA over real
 * loopback WebSockets; centralized LoRA on the pooled data), then report.json and report.html.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ProductBackend } from '../../core/product.js';
import { ruleLabel, type AggregationRule } from '../../core/robust.js';
import type { RoundRecord } from '../coordinator/events.js';
import { DEFAULT_DP_DELTA, type PrivacyConfig } from '../coordinator/privacyPlan.js';
import type { EventSink } from '../events/eventSink.js';
import type { SimulationMethod } from '../events/events.js';
import { buildReport, writeReportJson, type MethodReport, type RoundReport, type SimulationReport, type SimulationSettings } from './report.js';
import { writeReportHtml } from './reportHtml.js';
import { runCentralized } from './runCentralized.js';
import { methodRunDir, runFederated } from './runFederated.js';
import type { SimulationHyperparameters, SimulationWorkload, StepProgress } from './workload.js';

/** Everything a simulation needs; the workload (model + data) is built by the caller. */
export interface SimulationOptions extends SimulationHyperparameters {
  readonly methods: readonly SimulationMethod[];
  /** Output folder: report.json, report.html, runs/<method>/, adapters/<method>/. */
  readonly out: string;
  readonly saveAdapters: boolean;
  /** FedEx only: each round's residual truncated to this rank (the paper's "best inexact" variant). */
  readonly residualRank?: number;
  /** A robust aggregation rule for every federated method (core/robust.ts); absent: the mean. */
  readonly aggregation?: AggregationRule;
  /** Client-level DP for every federated method (privacyPlan.ts); absent: off. */
  readonly privacy?: PrivacyConfig;
  /** Heterogeneous client ranks (fedex and flora): client i trains at clientRanks[i mod n] ≤ `rank`; centralized trains at `rank`. */
  readonly clientRanks?: readonly number[];
  readonly workload: SimulationWorkload;
  /** Labels for the report: model folder, data spec, split, device. */
  readonly labels: { readonly model: string; readonly data: string; readonly split: string; readonly device: string };
  readonly sink: EventSink;
  readonly backend: ProductBackend;
  readonly onRound?: (method: SimulationMethod, round: RoundReport, record: RoundRecord | null) => void;
  readonly onStep?: (method: SimulationMethod, clientId: string, p: StepProgress) => void;
  readonly onMethodStart?: (method: SimulationMethod) => void;
  readonly signal?: AbortSignal;
  /** Override of the Chart.js source inlined into report.html (default: read from node_modules). */
  readonly chartJsSource?: string | null;
}

/** Where the outputs went. */
export interface SimulationResult {
  readonly report: SimulationReport;
  readonly reportJson: string;
  readonly reportHtml: string;
}

/** Runs every method in turn and writes the reports. */
export async function runSimulation(o: SimulationOptions): Promise<SimulationResult> {
  const started = performance.now();
  const out = resolve(o.out);
  await mkdir(out, { recursive: true });
  const { workload, sink } = o;
  const hp: SimulationHyperparameters = { clients: o.clients, rounds: o.rounds, localSteps: o.localSteps, batchSize: o.batchSize, lr: o.lr, rank: o.rank, alpha: o.alpha, seed: o.seed };
  sink.emit('simulation_started', {
    methods: o.methods,
    clients: o.clients,
    rounds: o.rounds,
    localSteps: o.localSteps,
    model: o.labels.model,
    data: o.labels.data,
    out,
    rank: o.rank,
    alpha: o.alpha,
    seed: o.seed,
  });
  const settings: SimulationSettings = {
    methods: o.methods,
    ...hp,
    model: o.labels.model,
    data: o.labels.data,
    split: o.labels.split,
    device: o.labels.device,
    workload: workload.kind,
    targetModules: workload.targetModules,
    modules: workload.layout.length,
    aggregation: ruleLabel(o.aggregation),
    ...(o.privacy !== undefined ? { privacy: { ...o.privacy, delta: o.privacy.delta ?? DEFAULT_DP_DELTA } } : {}),
    ...(o.clientRanks !== undefined ? { clientRanks: [...o.clientRanks] } : {}),
  };
  // The initial global adapter has B = 0, so every method starts from the base model itself.
  const pristine = await workload.base.load(workload.layout);
  const zero = new Map(workload.layout.map((m) => [m.module, {
    a: { shape: [m.rank, m.in] as [number, number], data: new Float32Array(m.rank * m.in) },
    b: { shape: [m.out, m.rank] as [number, number], data: new Float32Array(m.out * m.rank) },
  }]));
  const initial = await workload.evaluate(zero, pristine);
  const reports: MethodReport[] = [];
  for (const method of o.methods) {
    if (o.signal?.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new Error('simulation aborted');
    sink.emit('method_started', { method }, method);
    o.onMethodStart?.(method);
    const common = {
      workload,
      ...hp,
      initial,
      onStep: (id: string, p: StepProgress) => o.onStep?.(method, id, p),
      ...(o.signal !== undefined ? { signal: o.signal } : {}),
    };
    const report = method === 'centralized'
      ? await runCentralized({ ...common, sink, onRound: (row) => o.onRound?.(method, row, null) })
      : await runFederated({
        ...common,
        method,
        sink,
        backend: o.backend,
        runDir: methodRunDir(out, method),
        ...(method === 'fedex' && o.residualRank !== undefined ? { residualRank: o.residualRank } : {}),
        ...(o.aggregation !== undefined ? { aggregation: o.aggregation } : {}),
        ...(o.privacy !== undefined ? { privacy: o.privacy } : {}),
        ...(o.clientRanks !== undefined ? { clientRanks: o.clientRanks } : {}),
        onRound: (row, record) => o.onRound?.(method, row, record),
        ...(o.saveAdapters ? { saveAdaptersDir: join(out, 'adapters', method) } : {}),
      });
    reports.push(report);
    sink.emit('method_done', report.summary, method);
  }
  const report = buildReport(settings, reports, (performance.now() - started) / 1000);
  const reportJson = join(out, 'report.json');
  const reportHtml = join(out, 'report.html');
  await writeReportJson(reportJson, report);
  await writeReportHtml(reportHtml, report, o.chartJsSource);
  sink.emit('simulation_done', { reportJson, reportHtml });
  return { report, reportJson, reportHtml };
}
