/**
 * Selectors: a federation's state (the one the extension folded, federationState.ts) → the series
 * each chart draws, the rows of the rounds table and the progress panel's figures: the dashboard's
 * layer on top of the shared state. Pure; the chart code only maps these to chart.js datasets. A
 * point with a null value is left out (a gap), never drawn as 0.
 */
import { MODULE_TYPES, type ModuleType } from '../src/core/moduleNames.js';
import { activeRun, type FederationState, type HeatmapView, type ModulePoint, type RoundPoint, type RunState } from '../src/extension/state/federationState.js';

/** A point of a per-round line. */
export interface XY {
  readonly x: number;
  readonly y: number;
}

/** One line of a per-round chart. */
export interface LineSeries {
  /** Stable key (for colours), e.g. `client:c0`, `global`, `method:fedit`, `type:q`. */
  readonly key: string;
  readonly label: string;
  readonly role: 'global' | 'client' | 'eval' | 'method' | 'type';
  readonly points: XY[];
}

/** A categorical (bar) chart: one value per category per series. */
export interface BarSeries {
  readonly categories: string[];
  /** Full names behind the categories (tooltips), same order. */
  readonly titles: string[];
  readonly series: { readonly key: string; readonly label: string; readonly values: (number | null)[] }[];
}

function points<T>(items: readonly T[], x: (t: T) => number, y: (t: T) => number | null): XY[] {
  const out: XY[] = [];
  for (const item of items) {
    const v = y(item);
    if (v !== null && Number.isFinite(v)) out.push({ x: x(item), y: v });
  }
  return out;
}

function mean(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null);
  return v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
}

/** √Σx² of the non-null values (the Frobenius norm of the concatenated modules), or null. */
export function rootSumSquares(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null);
  return v.length === 0 ? null : Math.sqrt(v.reduce((a, b) => a + b * b, 0));
}

/** Number of points a set of series draws (the charts' `data-points`). */
export function countPoints(series: readonly LineSeries[] | BarSeries): number {
  if (Array.isArray(series)) return (series as readonly LineSeries[]).reduce((n, s) => n + s.points.length, 0);
  return (series as BarSeries).series.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0);
}

/** The run to detail: the chosen one when it exists, else the active one (the first once the federation is done). */
export function selectedRun(view: FederationState, chosen: string | null): RunState | null {
  const active = view.phase === 'done' ? undefined : activeRun(view);
  return view.runs.find((r) => r.key === chosen) ?? active ?? view.runs[0] ?? null;
}

/** The round the per-round charts show: the chosen one when closed, else the latest closed. */
export function selectedRound(run: RunState, chosen: number | null): RoundPoint | null {
  return run.rounds.find((r) => r.round === chosen) ?? run.rounds[run.rounds.length - 1] ?? null;
}

function runLabel(key: string): string {
  return key === '' ? 'global' : key;
}

/**
 * Loss per round: the selected run's global mean train loss, eval loss and each client's train
 * loss; in a simulation also the other methods' global (eval, else train) loss.
 */
export function lossSeries(view: FederationState, run: RunState): LineSeries[] {
  const name = (id: string): string => run.clients.find((c) => c.id === id)?.name ?? id;
  const out: LineSeries[] = [{ key: 'global', label: `${runLabel(run.key)} mean train loss`, role: 'global', points: points(run.rounds, (r) => r.round, (r) => r.meanLoss) }];
  if (run.evals.length > 0) out.push({ key: 'eval', label: `${runLabel(run.key)} eval loss`, role: 'eval', points: points(run.evals, (e) => e.round, (e) => e.loss) });
  const clients = [...new Set(run.rounds.flatMap((r) => r.clientLoss.map((c) => c.client)))];
  for (const id of clients) {
    out.push({ key: `client:${id}`, label: name(id), role: 'client', points: points(run.rounds, (r) => r.round, (r) => r.clientLoss.find((c) => c.client === id)?.loss ?? null) });
  }
  for (const other of view.runs) {
    if (other === run || other.key === '') continue;
    const useEval = other.evals.length > 0;
    const p = useEval ? points(other.evals, (e) => e.round, (e) => e.loss) : points(other.rounds, (r) => r.round, (r) => r.meanLoss);
    out.push({ key: `method:${other.key}`, label: `${other.key} ${useEval ? 'eval' : 'mean train'} loss`, role: 'method', points: p });
  }
  return out.filter((s) => s.points.length > 0 || s.role === 'global');
}

function typesPresent(modules: readonly ModulePoint[]): ModuleType[] {
  return MODULE_TYPES.filter((t) => modules.some((m) => m.type === t));
}

/**
 * Relative deviation of plain averaging from the exact update, per round: the mean over modules
 * for every run (method), and per module type for the selected run.
 */
export function deviationSeries(view: FederationState, run: RunState): LineSeries[] {
  const out: LineSeries[] = [];
  for (const r of [run, ...view.runs.filter((x) => x !== run)]) {
    const p = points(r.rounds, (x) => x.round, (x) => x.meanRelativeDeviation);
    if (p.length > 0 || r === run) out.push({ key: r === run ? 'global' : `method:${r.key}`, label: `${runLabel(r.key)} mean`, role: r === run ? 'global' : 'method', points: p });
  }
  const types = typesPresent(run.rounds.flatMap((r) => r.modules));
  if (types.length > 1) {
    for (const t of types) {
      out.push({ key: `type:${t}`, label: t, role: 'type', points: points(run.rounds, (r) => r.round, (r) => mean(r.modules.filter((m) => m.type === t).map((m) => m.relativeDeviation))) });
    }
  }
  return out;
}

/** ‖ΔR‖_F per module type per round (√Σ over the type's modules, i.e. the norm of their concatenation). */
export function residualByType(run: RunState): LineSeries[] {
  return typesPresent(run.rounds.flatMap((r) => r.modules)).map((t) => ({
    key: `type:${t}`,
    label: t,
    role: 'type' as const,
    points: points(run.rounds, (r) => r.round, (r) => rootSumSquares(r.modules.filter((m) => m.type === t).map((m) => m.residualNorm))),
  })).filter((s) => s.points.length > 0);
}

/** ‖ΔR‖_F per layer (categories) and module type (series) in one round. */
export function residualByLayer(round: RoundPoint | null): BarSeries {
  const modules = round?.modules ?? [];
  const layers = [...new Set(modules.map((m) => m.layer))].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
  return {
    categories: layers.map((l) => (l === null ? 'other' : `layer ${l}`)),
    titles: layers.map((l) => modules.filter((m) => m.layer === l).map((m) => m.module).join(', ')),
    series: typesPresent(modules).map((t) => ({
      key: `type:${t}`,
      label: t,
      values: layers.map((l) => rootSumSquares(modules.filter((m) => m.layer === l && m.type === t).map((m) => m.residualNorm))),
    })),
  };
}

/** A short label for a module: `<layer>.<last segment>` (the full name goes to the tooltip). */
export function moduleLabel(m: Pick<ModulePoint, 'module' | 'layer'>): string {
  const last = m.module.split('.').filter((s) => s !== '').pop() ?? m.module;
  return m.layer === null ? last : `${m.layer}.${last}`;
}

/** ‖ΔĀ‖_F and ‖ΔB̄‖_F per module in one round (how far the global adapter moved). */
export function adapterDiffs(round: RoundPoint | null): BarSeries {
  const modules = round?.modules ?? [];
  return {
    categories: modules.map(moduleLabel),
    titles: modules.map((m) => m.module),
    series: [
      { key: 'a', label: '‖ΔĀ‖', values: modules.map((m) => m.deltaA) },
      { key: 'b', label: '‖ΔB̄‖', values: modules.map((m) => m.deltaB) },
    ],
  };
}

/** ‖A_i − Ā‖_F (factor 'a') or ‖B_i − B̄‖_F ('b') per module (categories) and client (series). */
export function clientDiffs(run: RunState, round: RoundPoint | null, factor: 'a' | 'b'): BarSeries {
  const diffs = round?.clientDiffs ?? [];
  const modules = [...new Set([...(round?.modules ?? []).map((m) => m.module), ...diffs.map((d) => d.module)])];
  const layerOf = (module: string): number | null => round?.modules.find((m) => m.module === module)?.layer ?? null;
  const clients = [...new Set(diffs.map((d) => d.client))];
  return {
    categories: modules.map((module) => moduleLabel({ module, layer: layerOf(module) })),
    titles: modules,
    series: clients.map((id) => ({
      key: `client:${id}`,
      label: run.clients.find((c) => c.id === id)?.name ?? id,
      values: modules.map((module) => diffs.find((d) => d.client === id && d.module === module)?.[factor] ?? null),
    })),
  };
}

/** Modules the heatmap can show (those with a heatmap), in arrival order. */
export function heatmapModules(run: RunState): string[] {
  return run.heatmaps.map((h) => h.module);
}

/** The heatmap of the chosen module, else the first. */
export function selectedHeatmap(run: RunState, chosen: string | null): HeatmapView | null {
  return run.heatmaps.find((h) => h.module === chosen) ?? run.heatmaps[0] ?? null;
}

/**
 * The colour range of a heatmap: [0, max] for magnitudes (the coordinator's max-|ΔW| pooling), or
 * [−m, m] when some value is negative (a signed update). `max` is at least a tiny positive number.
 */
export function heatmapScale(h: HeatmapView): { readonly min: number; readonly max: number; readonly signed: boolean } {
  let m = 0;
  let signed = false;
  for (const v of h.values) {
    if (v === null) continue;
    m = Math.max(m, Math.abs(v));
    if (v < 0) signed = true;
  }
  const max = m > 0 ? m : 1e-12;
  return { min: signed ? -max : 0, max, signed };
}

/** A row of the rounds table. */
export interface RoundRow {
  readonly round: number;
  readonly aggregated: boolean;
  readonly participants: number;
  readonly meanLoss: number | null;
  readonly evalLoss: number | null;
  readonly meanRelativeDeviation: number | null;
  readonly durationMs: number | null;
  readonly bytes: number | null;
  /** Client-level DP: ε spent after the round (null: no bound or not reported); absent without DP. */
  readonly epsilon?: number | null;
}

/** The closed rounds of a run with their eval loss, oldest first. */
export function roundRows(run: RunState): RoundRow[] {
  return run.rounds.map((r) => ({
    round: r.round,
    aggregated: r.aggregated,
    participants: r.participants,
    meanLoss: r.meanLoss,
    evalLoss: run.evals.find((e) => e.round === r.round)?.loss ?? null,
    meanRelativeDeviation: r.meanRelativeDeviation,
    durationMs: r.durationMs,
    bytes: r.bytes,
    ...(r.privacy !== undefined ? { epsilon: r.privacy.epsilon } : {}),
  }));
}

/** A run's client-level DP so far: the latest closed round's ε at δ and rounds released; null without DP. */
export interface PrivacySummary {
  readonly epsilon: number | null;
  readonly delta: number | null;
  readonly releases: number | null;
  readonly clipped: number | null;
  readonly updates: number;
}

/** The privacy summary of a run (its latest round with DP figures), or null. */
export function privacySummary(run: RunState): PrivacySummary | null {
  const last = [...run.rounds].reverse().find((r) => r.privacy !== undefined)?.privacy;
  return last === undefined ? null : { epsilon: last.epsilon, delta: last.delta, releases: last.releases, clipped: last.clipped, updates: last.updates };
}

/** The round-progress panel's figures. */
export interface ProgressView {
  readonly round: number;
  readonly totalRounds: number | null;
  readonly phase: RunState['phase'];
  readonly reported: number;
  readonly sampled: number;
  readonly failed: number;
  readonly quorum: number | null;
  /** 0..1 of the whole run (closed rounds / total), null when the total is unknown. */
  readonly fraction: number | null;
}

/** Progress of a run. */
export function progress(run: RunState): ProgressView {
  const closed = run.rounds.length;
  const done = run.phase === 'done';
  return {
    round: run.round,
    totalRounds: run.totalRounds,
    phase: run.phase,
    reported: run.reported.length,
    sampled: run.sampled.length,
    failed: run.failed.length,
    quorum: run.quorum,
    fraction: run.totalRounds === null || run.totalRounds <= 0 ? null : done ? 1 : Math.min(1, closed / run.totalRounds),
  };
}
