/**
 * The simulation report (`report.json`): settings, every method's per-round figures (eval loss and
 * accuracy of the global model, train loss, deviation per module and per layer, bytes) and the
 * final comparison. `report.html` is rendered from the same object (reportHtml.ts).
 */
import { cpus, platform, arch } from 'node:os';
import { writeFileAtomic } from '../../formats/atomicFile.js';
import { classifyModule, layerIndex } from '../../core/moduleNames.js';
import { meanOf } from '../../core/stats.js';
import type { ModuleRoundRecord, RoundPrivacy, RoundRecord } from '../coordinator/events.js';
import type { PrivacyPlan } from '../coordinator/privacyPlan.js';
import type { MethodSummary, SimulationMethod } from '../events/events.js';
import type { EvalMetrics, SimulationHyperparameters } from './workload.js';

/** What was run (the flags, resolved). */
export interface SimulationSettings extends SimulationHyperparameters {
  readonly methods: readonly SimulationMethod[];
  readonly model: string;
  readonly data: string;
  readonly split: string;
  readonly device: string;
  readonly workload: 'onnx' | 'synthetic';
  readonly targetModules: readonly string[];
  readonly modules: number;
  /** The federated methods' aggregation rule: `mean`, `median` or `trimmed-mean β` (absent in reports written before it existed: mean). */
  readonly aggregation?: string;
  /** Client-level DP of the federated methods (absent: off). */
  readonly privacy?: PrivacyPlan;
  /** Heterogeneous client ranks of the federated methods: client i at clientRanks[i mod n] (absent: every client at `rank`). */
  readonly clientRanks?: readonly number[];
}

/** One module's deviation in one round. */
export interface ModuleDeviationEntry {
  readonly module: string;
  readonly layer: number | null;
  readonly type: string;
  readonly deviation: number | null;
  readonly relativeDeviation: number | null;
}

/** One layer's mean relative deviation in one round (modules without a layer index are `null`). */
export interface LayerDeviationEntry {
  readonly layer: number | null;
  readonly relativeDeviation: number;
}

/** One round of one method. Round 0 is the initial model (before any training). */
export interface RoundReport {
  readonly round: number;
  readonly evalLoss: number;
  readonly evalAccuracy: number | null;
  readonly exactMatch: number | null;
  /** Mean train loss of the participants (null at round 0). */
  readonly trainLoss: number | null;
  readonly participants: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly seconds: number;
  readonly meanRelativeDeviation: number | null;
  readonly layers: readonly LayerDeviationEntry[];
  readonly modules: readonly ModuleDeviationEntry[];
  /** With --residual-rank: the rank folded and the largest share of a module's ‖ΔR‖_F dropped this round. */
  readonly residualTruncation?: { readonly rank: number; readonly maxRelativeError: number };
  /** With client-level DP: the round's clipping and noise, and ε spent so far (the coordinator's `RoundRecord.privacy`). */
  readonly privacy?: RoundPrivacy;
}

/** Everything about one method. */
export interface MethodReport {
  readonly method: SimulationMethod;
  readonly summary: MethodSummary;
  readonly rounds: readonly RoundReport[];
  /** Folder of the coordinator's run (state, events.jsonl), when federated. */
  readonly runDir: string | null;
  /** Folder of the saved adapters and bases, when `--save-adapters`. */
  readonly adaptersDir: string | null;
}

/** report.json. */
export interface SimulationReport {
  readonly format: 'fedex-simulation-report';
  readonly version: 1;
  readonly createdAt: string;
  readonly settings: SimulationSettings;
  readonly machine: MachineInfo;
  readonly methods: readonly MethodReport[];
  /** The final figures of every method, in run order. */
  readonly comparison: readonly MethodSummary[];
  readonly seconds: number;
}

/** Per-module deviation entries of a round record. */
export function moduleEntries(modules: readonly ModuleRoundRecord[]): ModuleDeviationEntry[] {
  return modules.map((m) => ({ module: m.module, layer: layerIndex(m.module), type: classifyModule(m.module), deviation: m.deviation, relativeDeviation: m.relativeDeviation }));
}

/** Mean relative deviation per layer, layers in ascending order (modules without a layer last). */
export function layerEntries(modules: readonly ModuleDeviationEntry[]): LayerDeviationEntry[] {
  const byLayer = new Map<number | null, (number | null)[]>();
  for (const m of modules) byLayer.set(m.layer, [...(byLayer.get(m.layer) ?? []), m.relativeDeviation]);
  const keys = [...byLayer.keys()].sort((a, b) => (a === null ? 1 : b === null ? -1 : a - b));
  return keys.flatMap((layer) => {
    const v = meanOf(byLayer.get(layer)!);
    return v === null ? [] : [{ layer, relativeDeviation: v }];
  });
}

/** The report row of a federated round from the coordinator's record and the global model's evaluation. */
export function federatedRound(record: RoundRecord, evaluation: EvalMetrics): RoundReport {
  const modules = moduleEntries(record.modules);
  return {
    round: record.round,
    evalLoss: evaluation.loss,
    evalAccuracy: evaluation.accuracy,
    exactMatch: evaluation.exactMatch,
    trainLoss: record.loss?.mean ?? null,
    participants: record.participants.length,
    bytesSent: record.traffic.sent,
    bytesReceived: record.traffic.received,
    seconds: record.durationMs / 1000,
    meanRelativeDeviation: meanOf(modules.map((m) => m.relativeDeviation)),
    layers: layerEntries(modules),
    modules,
    ...truncationOf(record),
    ...(record.privacy !== undefined ? { privacy: record.privacy } : {}),
  };
}

function truncationOf(record: RoundRecord): Pick<RoundReport, 'residualTruncation'> {
  const cut = record.modules.flatMap((m) => (m.residualTruncation !== undefined ? [m.residualTruncation] : []));
  return cut.length === 0 ? {} : { residualTruncation: { rank: cut[0].rank, maxRelativeError: Math.max(...cut.map((t) => t.relativeError)) } };
}

/** The round-0 row: the initial model, shared by every method. */
export function initialRound(evaluation: EvalMetrics): RoundReport {
  return {
    round: 0,
    evalLoss: evaluation.loss,
    evalAccuracy: evaluation.accuracy,
    exactMatch: evaluation.exactMatch,
    trainLoss: null,
    participants: 0,
    bytesSent: 0,
    bytesReceived: 0,
    seconds: 0,
    meanRelativeDeviation: null,
    layers: [],
    modules: [],
  };
}

/** The final summary of a method from its rounds. */
export function summarize(method: SimulationMethod, rounds: readonly RoundReport[], seconds: number): MethodSummary {
  const last = rounds[rounds.length - 1];
  const trained = rounds.filter((r) => r.round > 0);
  return {
    method,
    evalLoss: last?.evalLoss ?? NaN,
    evalAccuracy: last?.evalAccuracy ?? null,
    exactMatch: last?.exactMatch ?? null,
    meanRelativeDeviation: method === 'centralized' ? null : meanOf(trained.map((r) => r.meanRelativeDeviation)),
    bytesSent: trained.reduce((a, r) => a + r.bytesSent, 0),
    bytesReceived: trained.reduce((a, r) => a + r.bytesReceived, 0),
    seconds,
  };
}

/** The machine a report was made on. */
export interface MachineInfo {
  readonly cpus: number;
  readonly platform: string;
  readonly arch: string;
  readonly node: string;
}

/** This machine, for a report's `machine` field. */
export function machineInfo(): MachineInfo {
  return { cpus: cpus().length, platform: platform(), arch: arch(), node: process.version };
}

/** Assembles the report. */
export function buildReport(settings: SimulationSettings, methods: readonly MethodReport[], seconds: number): SimulationReport {
  return {
    format: 'fedex-simulation-report',
    version: 1,
    createdAt: new Date().toISOString(),
    settings,
    machine: machineInfo(),
    methods,
    comparison: methods.map((m) => m.summary),
    seconds,
  };
}

/** Writes report.json atomically (non-finite numbers as null). */
export async function writeReportJson(path: string, report: SimulationReport): Promise<void> {
  const text = JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
  await writeFileAtomic(path, `${text}\n`);
}
