/**
 * The sidebar's content as plain data: tree items for the federations, clients and rounds views and
 * the status-bar text, all derived from `FederationState`. The vscode glue maps these 1:1 onto
 * `TreeItem`s. No vscode here.
 */
import { activeRun, currentRound, lastWarning, roundsTotal } from './federationState.js';
import type { ClientState, FederationState, RunState } from './federationState.js';
import { TERMINAL_PHASES } from './phases.js';
import { formatBytes } from '../../cli/ui/table.js';

/** One tree item, independent of VS Code. `icon` is a codicon id. */
export interface TreeNode {
  readonly id: string;
  readonly label: string;
  readonly description?: string;
  readonly tooltip?: string;
  readonly icon?: string;
  /** Drives the context menus (`viewItem` in package.json's `menus`). */
  readonly contextValue?: string;
  /** The federation it belongs to (commands invoked on the item act on it). */
  readonly federationId?: string;
  readonly children?: readonly TreeNode[];
}

const KIND_LABEL: Record<FederationState['kind'], string> = { simulation: 'local simulation', host: 'hosted', join: 'joined', remote: 'remote' };
const KIND_ICON: Record<FederationState['kind'], string> = { simulation: 'beaker', host: 'server', join: 'plug', remote: 'globe' };

/** `0.1234` → `0.123`, null → `–`. */
export function formatMetric(x: number | null, digits = 3): string {
  if (x === null || !Number.isFinite(x)) return '–';
  return Math.abs(x) >= 1000 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : x.toPrecision(digits);
}

/** One row of the rounds view: a closed round, a round evaluated without a coordinator, or the running one. */
export interface RoundView {
  readonly round: number;
  /** The simulated method it belongs to (null outside `simulate`). */
  readonly method: string | null;
  readonly status: 'running' | 'closed';
  readonly sampled: number;
  readonly participants: number;
  readonly meanLoss: number | null;
  readonly evalLoss: number | null;
  readonly evalAccuracy: number | null;
  /** Mean over modules of the relative deviation of plain averaging (null when not measured). */
  readonly meanRelativeDeviation: number | null;
  readonly bytes: number | null;
  readonly durationMs: number | null;
  readonly aggregated: boolean | null;
}

/** Run phases in which a round runs. */
const IN_ROUND: ReadonlySet<RunState['phase']> = new Set(['training', 'uploaded', 'aggregating']);

/**
 * The rows of one run, oldest first: its closed rounds (with their eval figures), the rounds only
 * evaluated (centralized: running until the method is done), and the round running now.
 */
export function runRoundViews(run: RunState): RoundView[] {
  const method = run.key === '' ? null : run.key;
  const ended = TERMINAL_PHASES.has(run.phase);
  const empty = { method, sampled: 0, participants: 0, meanLoss: null, evalLoss: null, evalAccuracy: null, meanRelativeDeviation: null, bytes: null, durationMs: null, aggregated: null };
  const rows = new Map<number, RoundView>();
  for (const r of run.rounds) {
    rows.set(r.round, {
      ...empty,
      round: r.round,
      status: 'closed',
      sampled: r.sampled,
      participants: r.participants,
      meanLoss: r.meanLoss,
      meanRelativeDeviation: r.meanRelativeDeviation,
      bytes: r.bytes,
      durationMs: r.durationMs,
      aggregated: r.aggregated,
    });
  }
  for (const e of run.evals) {
    rows.set(e.round, { ...(rows.get(e.round) ?? { ...empty, round: e.round, status: ended ? 'closed' : 'running' }), evalLoss: e.loss, evalAccuracy: e.accuracy });
  }
  if (run.round > 0 && !rows.has(run.round) && IN_ROUND.has(run.phase)) {
    rows.set(run.round, { ...empty, round: run.round, status: 'running', sampled: run.sampled.length });
  }
  return [...rows.values()].sort((a, b) => a.round - b.round);
}

/** The rows of every run of a federation, run after run. */
export function roundViews(s: FederationState): RoundView[] {
  return s.runs.flatMap(runRoundViews);
}

/** `round 2/5` (or `round 2` when the total is unknown). */
export function roundText(s: FederationState): string {
  const total = roundsTotal(s);
  return `round ${currentRound(s)}${total !== null ? `/${total}` : ''}`;
}

/** The phase as shown: `ready` says what to do (`ready — run FedEx: Start Round`). */
export function phaseText(s: FederationState): string {
  return s.phase === 'ready' ? 'ready — run FedEx: Start Round' : s.phase;
}

/** 0..1: how far a federation is (closed rounds of methods × rounds for a simulation). */
export function federationFraction(s: FederationState): number {
  const total = roundsTotal(s);
  if (total === null || total <= 0) return 0;
  const methods = s.simulation?.methods ?? [];
  const methodIndex = s.method !== null && methods.includes(s.method) ? methods.indexOf(s.method) : 0;
  const run = activeRun(s);
  const closed = run === undefined ? 0 : runRoundViews(run).filter((r) => r.status === 'closed').length;
  return Math.min(1, (methodIndex * total + Math.min(closed, total)) / (Math.max(1, methods.length) * total));
}

/** The clients of the run the federation is in now. */
function currentClients(s: FederationState): readonly ClientState[] {
  return activeRun(s)?.clients ?? [];
}

/** The status-bar text of the active federation, e.g. `FedEx round 2/5 · training`. */
export function statusText(s: FederationState | undefined): string {
  if (s === undefined) return 'FedEx';
  const method = s.kind === 'simulation' && s.method !== null && s.live ? ` · ${s.method}` : '';
  return `FedEx ${roundText(s)} · ${phaseText(s)}${method}`;
}

/** The status-bar tooltip. */
export function statusTooltip(s: FederationState | undefined): string {
  if (s === undefined) return 'FedEx: no federation running. Click to open the dashboard.';
  const lines = [`${s.label} (${KIND_LABEL[s.kind]})`, `${roundText(s)}, ${phaseText(s)}`];
  const clients = currentClients(s);
  if (clients.length > 0) lines.push(`${clients.filter((c) => c.connected).length} clients`);
  if (s.lastError !== null) lines.push(`error: ${s.lastError}`);
  lines.push(statusCommand(s) === 'fedex.startRound' ? 'Click to run FedEx: Start Round.' : 'Click to open the dashboard.');
  return lines.join('\n');
}

/** What a click on the status-bar item runs: Start Round while a round waits for it, else the dashboard. */
export function statusCommand(s: FederationState | undefined): 'fedex.startRound' | 'fedex.openDashboard' {
  return s !== undefined && s.live && s.phase === 'ready' ? 'fedex.startRound' : 'fedex.openDashboard';
}

/** Context value of a federation item: `federation.<kind>.<live|ended|idle>`. */
export function federationContext(s: FederationState): string {
  return `federation.${s.kind}.${s.live ? 'live' : s.kind === 'remote' ? 'idle' : 'ended'}`;
}

function phaseIcon(s: FederationState): string {
  if (s.phase === 'failed') return 'error';
  if (s.phase === 'done') return 'pass';
  if (s.phase === 'stopped') return 'circle-slash';
  if (s.live && s.phase === 'ready') return 'debug-start';
  if (s.live && (s.phase === 'training' || s.phase === 'aggregating' || s.phase === 'closed')) return 'sync~spin';
  return KIND_ICON[s.kind];
}

/**
 * The federations view: one item per federation. Remote federations from settings are hidden while
 * a joined federation for the same URL exists (that one shows instead, with live status).
 */
export function federationNodes(states: readonly FederationState[]): TreeNode[] {
  const joinedUrls = new Set(states.filter((s) => s.kind === 'join' && s.url !== null).map((s) => s.url));
  return states
    .filter((s) => !(s.kind === 'remote' && s.url !== null && joinedUrls.has(s.url)))
    .map((s) => {
      const description = s.kind === 'remote' && !s.live ? (s.url ?? '') : `${phaseText(s)} · ${roundText(s)}`;
      const warning = lastWarning(s);
      const tooltip = [
        `${s.label} — ${KIND_LABEL[s.kind]}`,
        s.url !== null ? `URL: ${s.url}` : null,
        s.outDir !== null ? `Folder: ${s.outDir}` : null,
        s.method !== null ? `Method: ${s.method}` : null,
        `Phase: ${phaseText(s)}${s.live ? ' (running)' : ''}`,
        s.lastError !== null ? `Error: ${s.lastError}` : null,
        warning !== null ? `Last warning: ${warning}` : null,
      ].filter((l): l is string => l !== null).join('\n');
      return { id: `fed:${s.id}`, label: s.label, description, tooltip, icon: phaseIcon(s), contextValue: federationContext(s), federationId: s.id };
    });
}

function clientNode(s: FederationState, c: ClientState): TreeNode {
  const progress = c.status === 'training' && c.step !== null && c.totalSteps !== null ? ` ${c.step}/${c.totalSteps}` : '';
  const parts = [`${c.status}${progress}`, c.examples !== null ? `${c.examples} examples` : null, c.lastLoss !== null ? `loss ${formatMetric(c.lastLoss)}` : null];
  const icon = c.status === 'failed' || c.status === 'rejected' ? 'warning' : c.status === 'left' || !c.connected ? 'debug-disconnect' : c.status === 'training' ? 'loading~spin' : 'account';
  return {
    id: `client:${s.id}:${c.id}`,
    label: c.name,
    description: parts.filter((p): p is string => p !== null).join(' · '),
    tooltip: `${c.name} (${c.id})\nstatus: ${c.status}\nexamples: ${c.examples ?? '–'}\nlast loss: ${formatMetric(c.lastLoss, 5)}`,
    icon,
    contextValue: 'client',
    federationId: s.id,
  };
}

/** The clients view: a node per federation whose current run has clients, holding them. */
export function clientNodes(states: readonly FederationState[]): TreeNode[] {
  return states
    .filter((s) => currentClients(s).length > 0)
    .map((s) => ({
      id: `clients:${s.id}`,
      label: s.label,
      description: `${currentClients(s).filter((c) => c.connected).length} connected${s.method !== null && s.kind === 'simulation' ? ` · ${s.method}` : ''}`,
      icon: KIND_ICON[s.kind],
      contextValue: federationContext(s),
      federationId: s.id,
      children: currentClients(s).map((c) => clientNode(s, c)),
    }));
}

function roundNode(s: FederationState, r: RoundView): TreeNode {
  const parts = [
    r.status === 'running' ? 'running' : null,
    r.meanLoss !== null ? `loss ${formatMetric(r.meanLoss)}` : null,
    r.evalLoss !== null ? `eval ${formatMetric(r.evalLoss)}` : null,
    r.meanRelativeDeviation !== null ? `dev ${formatMetric(r.meanRelativeDeviation, 2)}` : null,
    r.participants > 0 ? `${r.participants}${r.sampled > 0 ? `/${r.sampled}` : ''} clients` : null,
  ];
  const tooltip = [
    `Round ${r.round}${r.method !== null ? ` (${r.method})` : ''}: ${r.status}`,
    `mean train loss: ${formatMetric(r.meanLoss, 5)}`,
    `eval loss: ${formatMetric(r.evalLoss, 5)}`,
    `eval accuracy: ${formatMetric(r.evalAccuracy, 4)}`,
    `mean relative deviation of plain averaging: ${formatMetric(r.meanRelativeDeviation, 4)}`,
    `participants: ${r.participants} of ${r.sampled} sampled`,
    `bytes on the wire: ${r.bytes !== null ? formatBytes(r.bytes) : '–'}`,
    `duration: ${r.durationMs !== null ? `${(r.durationMs / 1000).toFixed(1)} s` : '–'}`,
  ].join('\n');
  return {
    id: `round:${s.id}:${r.method ?? ''}:${r.round}`,
    label: `Round ${r.round}`,
    description: parts.filter((p): p is string => p !== null).join(' · '),
    tooltip,
    icon: r.status === 'running' ? 'loading~spin' : r.aggregated === false ? 'warning' : 'check',
    contextValue: 'round',
    federationId: s.id,
  };
}

/** The rounds view: per federation (and per method in a simulation), its rounds, latest first. */
export function roundNodes(states: readonly FederationState[]): TreeNode[] {
  return states
    .map((s) => ({ s, rows: roundViews(s) }))
    .filter(({ rows }) => rows.length > 0)
    .map(({ s, rows }) => {
      const methods = [...new Set(rows.map((r) => r.method))];
      const latestFirst = (rs: readonly RoundView[]): TreeNode[] => [...rs].reverse().map((r) => roundNode(s, r));
      const children = methods.length === 1 && methods[0] === null
        ? latestFirst(rows)
        : methods.map((m) => {
          const result = s.runs.find((r) => r.key === m)?.summary ?? null;
          return {
            id: `rounds:${s.id}:${m ?? ''}`,
            label: m ?? 'rounds',
            description: result !== null ? `final eval loss ${formatMetric(result.evalLoss)}` : s.method === m && !TERMINAL_PHASES.has(s.phase) ? 'running' : '',
            icon: 'symbol-method',
            federationId: s.id,
            children: latestFirst(rows.filter((r) => r.method === m)),
          };
        });
      return { id: `rounds:${s.id}`, label: s.label, description: roundText(s), icon: KIND_ICON[s.kind], contextValue: federationContext(s), federationId: s.id, children };
    });
}
