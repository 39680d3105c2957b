/**
 * `fedex simulate --seeds N --sweep axis=v1,…`: the simulation (simulate.ts) run once per seed
 * s0 … s0+N−1 and sweep value, each run a complete single-run simulation in its own folder
 * (`seed-1/`, `local-steps-20/seed-1/`: report.json, report.html, runs/<method>/), then one
 * report.json + report.html over all of them with the mean ± sd per method and the FedEx − FedIT
 * gap per sweep point (comparisonReport.ts). One run and no sweep is the plain simulation, written
 * straight into `out`. The seed varies the data (a task's generated records), the split, the LoRA
 * initialisation and the data order; each run builds its own workload for its seed.
 */
import { join, resolve } from 'node:path';
import { buildComparisonReport, writeComparisonJson, type ComparisonReport, type RunEntry, type SweepSpec } from './comparisonReport.js';
import { writeComparisonHtml } from './comparisonHtml.js';
import { runSimulation, type SimulationOptions, type SimulationResult } from './simulate.js';
import type { SimulationWorkload } from './workload.js';

/** One run of the plan. */
export interface RunPlan {
  /** 0-based position in the plan. */
  readonly index: number;
  /** `seed-0` or `local-steps-5/seed-0`; the run's folder under `out`, or `.` for a lone run. */
  readonly label: string;
  readonly seed: number;
  readonly clients: number;
  readonly localSteps: number;
  readonly sweepValue: number | null;
}

/** A simulation over seeds and sweep values; the workload is built per run. */
export interface ComparisonOptions extends Omit<SimulationOptions, 'workload'> {
  /** How many seeds, from `seed` up (at least 1). */
  readonly seeds: number;
  readonly sweep?: SweepSpec;
  /** Builds the workload of a run (its seed decides the data, split and order); disposed after the run. */
  readonly createWorkload: (run: RunPlan) => Promise<SimulationWorkload>;
  /** Told before each run starts (for a header line). */
  readonly onRunStart?: (run: RunPlan, total: number) => void;
  /** Told after each run, with its single-run result. */
  readonly onRunDone?: (run: RunPlan, result: SimulationResult) => void;
}

/** The runs, and the combined report when there is more than one run or a sweep. */
export interface ComparisonResult {
  readonly runs: readonly SimulationResult[];
  readonly report: ComparisonReport | null;
  readonly reportJson: string;
  readonly reportHtml: string;
}

/** The runs of a comparison: sweep values outermost (in the order given), seeds inside. */
export function planRuns(o: { seed: number; seeds: number; clients: number; localSteps: number; sweep?: SweepSpec }): RunPlan[] {
  if (!Number.isInteger(o.seeds) || o.seeds < 1) throw new RangeError(`simulation: seeds must be a positive integer, got ${o.seeds}`);
  const values: (number | null)[] = o.sweep === undefined ? [null] : [...o.sweep.values];
  if (values.length === 0) throw new RangeError('simulation: a sweep needs at least one value');
  const lone = o.seeds === 1 && o.sweep === undefined;
  return values.flatMap((value, v) => Array.from({ length: o.seeds }, (_, i): RunPlan => {
    const seed = o.seed + i;
    const prefix = o.sweep === undefined ? '' : `${o.sweep.axis}-${value}/`;
    return {
      index: v * o.seeds + i,
      label: lone ? '.' : `${prefix}seed-${seed}`,
      seed,
      clients: o.sweep?.axis === 'clients' && value !== null ? value : o.clients,
      localSteps: o.sweep?.axis === 'local-steps' && value !== null ? value : o.localSteps,
      sweepValue: value,
    };
  }));
}

/** Runs every planned simulation in turn, then writes the combined report (see the module comment). */
export async function runComparison(o: ComparisonOptions): Promise<ComparisonResult> {
  const started = performance.now();
  const out = resolve(o.out);
  const plan = planRuns(o);
  const { seeds: _seeds, sweep, createWorkload, onRunStart, onRunDone, ...simulation } = o;
  const results: SimulationResult[] = [];
  const entries: RunEntry[] = [];
  for (const run of plan) {
    if (o.signal?.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new Error('simulation aborted');
    onRunStart?.(run, plan.length);
    const workload = await createWorkload(run);
    let result: SimulationResult;
    try {
      result = await runSimulation({ ...simulation, seed: run.seed, clients: run.clients, localSteps: run.localSteps, workload, out: join(out, run.label) });
    } finally {
      await workload.dispose();
    }
    results.push(result);
    const r = result.report;
    entries.push({
      label: run.label,
      seed: run.seed,
      clients: run.clients,
      localSteps: run.localSteps,
      sweepValue: run.sweepValue,
      initialEvalLoss: r.methods[0]?.rounds[0]?.evalLoss ?? NaN,
      comparison: r.comparison,
      seconds: r.seconds,
    });
    onRunDone?.(run, result);
  }
  if (plan.length === 1 && sweep === undefined) return { runs: results, report: null, reportJson: results[0].reportJson, reportHtml: results[0].reportHtml };
  const first = results[0].report.settings;
  const report = buildComparisonReport({
    ...first,
    seed: o.seed,
    clients: o.clients,
    localSteps: o.localSteps,
    seeds: plan.filter((p) => p.sweepValue === plan[0].sweepValue).map((p) => p.seed),
    sweep: sweep ?? null,
  }, entries, (performance.now() - started) / 1000);
  const reportJson = join(out, 'report.json');
  const reportHtml = join(out, 'report.html');
  await writeComparisonJson(reportJson, report);
  await writeComparisonHtml(reportHtml, report, o.chartJsSource);
  o.sink.emit('simulation_done', { reportJson, reportHtml });
  return { runs: results, report, reportJson, reportHtml };
}
