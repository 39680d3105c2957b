/**
 * The report of a multi-run `fedex simulate` (`--seeds N`, `--sweep axis=v1,v2,…`): every run's
 * final figures (`runs`, each run's full single-run report in its own folder) and, computed from
 * them, per sweep point the mean ± sample standard deviation over the seeds of each method's
 * figures and of the FedEx − FedIT gap, paired by seed (docs/simulate.md). Nothing here is typed
 * in: {@link summarizeRuns} derives every figure from `runs`, and a test recomputes it from
 * report.json.
 */
import { writeFileAtomic } from '../../formats/atomicFile.js';
import type { MethodSummary, SimulationMethod } from '../events/events.js';
import { machineInfo, type MachineInfo, type SimulationSettings } from './report.js';

/** The hyperparameters a sweep can vary (one axis per run of `fedex simulate`). */
export const SWEEP_AXES = ['local-steps', 'clients'] as const;
export type SweepAxis = (typeof SWEEP_AXES)[number];

/** `--sweep axis=v1,v2,…`. */
export interface SweepSpec {
  readonly axis: SweepAxis;
  readonly values: readonly number[];
}

/** One run of the comparison: every method on one seed at one sweep value. */
export interface RunEntry {
  /** `seed-0`, or `local-steps-5/seed-0` in a sweep; also its folder under the report's. */
  readonly label: string;
  readonly seed: number;
  readonly clients: number;
  readonly localSteps: number;
  /** The sweep axis's value of this run; null without a sweep. */
  readonly sweepValue: number | null;
  /** Eval loss of the initial model (round 0), shared by the run's methods. */
  readonly initialEvalLoss: number;
  /** Each method's final figures, as in the run's own report.json. */
  readonly comparison: readonly MethodSummary[];
  readonly seconds: number;
}

/** Mean and sample standard deviation (n − 1) of the finite figures among `n` runs. */
export interface Stat {
  /** Runs with a finite figure. */
  readonly n: number;
  readonly mean: number | null;
  /** Null with fewer than two figures. */
  readonly sd: number | null;
}

/** One method's figures over the seeds of one sweep point. */
export interface MethodStats {
  readonly method: SimulationMethod;
  readonly evalLoss: Stat;
  readonly evalAccuracy: Stat;
  readonly exactMatch: Stat;
  readonly meanRelativeDeviation: Stat;
  readonly bytesSent: Stat;
  readonly bytesReceived: Stat;
  readonly seconds: Stat;
}

/** A FedEx − FedIT difference paired by seed, against the seeds' spread of either method. */
export interface GapStat extends Stat {
  /** The larger of FedEx's and FedIT's standard deviation over the seeds (null below two seeds). */
  readonly spread: number | null;
  /** |mean gap| > spread; null when either is unknown. */
  readonly exceedsSpread: boolean | null;
}

/** FedEx − FedIT per seed: negative loss gap or positive accuracy / exact-match gap = FedEx better. */
export interface GapStats {
  readonly evalLoss: GapStat;
  readonly evalAccuracy: GapStat;
  readonly exactMatch: GapStat;
}

/** Everything at one sweep value (the only point without a sweep). */
export interface PointSummary {
  readonly sweepValue: number | null;
  readonly clients: number;
  readonly localSteps: number;
  readonly seeds: readonly number[];
  readonly methods: readonly MethodStats[];
  /** Null unless both fedex and fedit ran. */
  readonly gap: GapStats | null;
}

/** report.json of a multi-run simulation. */
export interface ComparisonReport {
  readonly format: 'fedex-simulation-comparison';
  readonly version: 1;
  readonly createdAt: string;
  /** The flags, resolved: `seed` is the first seed, `clients`/`localSteps` the values a sweep overrides. */
  readonly settings: SimulationSettings & { readonly seeds: readonly number[]; readonly sweep: SweepSpec | null };
  readonly machine: MachineInfo;
  readonly runs: readonly RunEntry[];
  /** Per sweep point, in the sweep's order: computed from `runs` by {@link summarizeRuns}. */
  readonly summary: readonly PointSummary[];
  readonly seconds: number;
}

/** Mean and sample standard deviation of the finite values (null or non-finite ones are left out, not counted). */
export function meanSd(values: readonly (number | null)[]): Stat {
  const ok = values.filter((v): v is number => v !== null && Number.isFinite(v));
  if (ok.length === 0) return { n: 0, mean: null, sd: null };
  const mean = ok.reduce((a, b) => a + b, 0) / ok.length;
  const sd = ok.length < 2 ? null : Math.sqrt(ok.reduce((a, v) => a + (v - mean) ** 2, 0) / (ok.length - 1));
  return { n: ok.length, mean, sd };
}

type Metric = 'evalLoss' | 'evalAccuracy' | 'exactMatch' | 'meanRelativeDeviation' | 'bytesSent' | 'bytesReceived' | 'seconds';

function figure(run: RunEntry, method: SimulationMethod, metric: Metric): number | null {
  const m = run.comparison.find((c) => c.method === method);
  return m === undefined ? null : m[metric];
}

function gapStat(runs: readonly RunEntry[], fedex: MethodStats, fedit: MethodStats, metric: 'evalLoss' | 'evalAccuracy' | 'exactMatch'): GapStat {
  const diffs = runs.map((r) => {
    const a = figure(r, 'fedex', metric);
    const b = figure(r, 'fedit', metric);
    return a === null || b === null ? null : a - b;
  });
  const stat = meanSd(diffs);
  const sds = [fedex[metric].sd, fedit[metric].sd];
  const spread = sds.some((s) => s === null) ? null : Math.max(...(sds as number[]));
  return { ...stat, spread, exceedsSpread: stat.mean === null || spread === null ? null : Math.abs(stat.mean) > spread };
}

/**
 * The summary of the runs: per sweep point (in the order of `sweepValues`, or one point when null),
 * each method's mean ± sd over the seeds, and the FedEx − FedIT gap paired by seed.
 */
export function summarizeRuns(runs: readonly RunEntry[], methods: readonly SimulationMethod[], sweepValues: readonly number[] | null): PointSummary[] {
  const points: (number | null)[] = sweepValues === null ? [null] : [...sweepValues];
  return points.map((value) => {
    const at = runs.filter((r) => r.sweepValue === value);
    if (at.length === 0) throw new Error(`summarizeRuns: no run at sweep value ${String(value)}`);
    const stats = methods.map((method): MethodStats => {
      const of = (metric: Metric): Stat => meanSd(at.map((r) => figure(r, method, metric)));
      return {
        method,
        evalLoss: of('evalLoss'),
        evalAccuracy: of('evalAccuracy'),
        exactMatch: of('exactMatch'),
        meanRelativeDeviation: of('meanRelativeDeviation'),
        bytesSent: of('bytesSent'),
        bytesReceived: of('bytesReceived'),
        seconds: of('seconds'),
      };
    });
    const fedex = stats.find((m) => m.method === 'fedex');
    const fedit = stats.find((m) => m.method === 'fedit');
    const gap = fedex === undefined || fedit === undefined ? null : {
      evalLoss: gapStat(at, fedex, fedit, 'evalLoss'),
      evalAccuracy: gapStat(at, fedex, fedit, 'evalAccuracy'),
      exactMatch: gapStat(at, fedex, fedit, 'exactMatch'),
    };
    return { sweepValue: value, clients: at[0].clients, localSteps: at[0].localSteps, seeds: at.map((r) => r.seed), methods: stats, gap };
  });
}

/** Assembles the report; the summary is computed from the runs. */
export function buildComparisonReport(settings: ComparisonReport['settings'], runs: readonly RunEntry[], seconds: number): ComparisonReport {
  return {
    format: 'fedex-simulation-comparison',
    version: 1,
    createdAt: new Date().toISOString(),
    settings,
    machine: machineInfo(),
    runs,
    summary: summarizeRuns(runs, settings.methods, settings.sweep?.values ?? null),
    seconds,
  };
}

/** Writes report.json atomically (non-finite numbers as null). */
export async function writeComparisonJson(path: string, report: ComparisonReport): Promise<void> {
  const text = JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
  await writeFileAtomic(path, `${text}\n`);
}

/** `12.3 ± 0.4` (`–` when unknown; no `±` below two figures). */
export function formatStat(s: Stat, format: (x: number) => string): string {
  if (s.mean === null) return '–';
  return s.sd === null ? format(s.mean) : `${format(s.mean)} ± ${format(s.sd)}`;
}
