/**
 * What the extension knows about one federation, folded from its event stream by ONE pure reducer,
 * `reduceFederation(state, event) → state`, that the sidebar, the status bar and the dashboard
 * webview all use: the extension folds each stream once, hands the folded state to the dashboard
 * (`init`, `federation`) and forwards new events, which the webview folds with this same function.
 * No vscode and no node here (the webview bundles this folder; eslint.config.mjs keeps it so).
 *
 * Payload fields are read defensively (read.ts): the stream is JSON from a CLI, numbers that were not
 * finite arrive as null, a newer CLI may add event types. A malformed field becomes null, an unknown
 * event only counts, nothing throws. The state is plain JSON (no Maps, no class instances, no
 * undefined fields): it travels through `postMessage` and `setState` unchanged. Everything keyed by
 * something a peer chose (client ids, module names) is an array of records, never an object's keys.
 */
import type { ModuleType } from '../../core/moduleNames.js';
import type { CliEvent } from '../../federation/events/events.js';
import { JOIN_HANDLERS } from './joinEvents.js';
import { TERMINAL_PHASES, type ClientStatus, type FederationKind, type FederationPhase } from './phases.js';
import type { Fields } from './read.js';
import { RUN_HANDLERS } from './runEvents.js';
import { activeRunKey, type Handlers } from './stateUpdates.js';

/** A client as the coordinator (or the simulation, or a joined client about itself) saw it. */
export interface ClientState {
  readonly id: string;
  readonly name: string;
  readonly connected: boolean;
  readonly status: ClientStatus;
  readonly step: number | null;
  readonly totalSteps: number | null;
  readonly lastLoss: number | null;
  readonly examples: number | null;
}

/** Figures of one module in one round (null when not measured). */
export interface ModulePoint {
  readonly module: string;
  readonly type: ModuleType;
  readonly layer: number | null;
  readonly deviation: number | null;
  readonly relativeDeviation: number | null;
  readonly residualNorm: number | null;
  /** ‖Ā_t − Ā_{t−1}‖_F and ‖B̄_t − B̄_{t−1}‖_F: how far the global adapter moved this round. */
  readonly deltaA: number | null;
  readonly deltaB: number | null;
}

/** ‖A_i − Ā‖_F, ‖B_i − B̄‖_F of one client and module in one round. */
export interface ClientModuleDiff {
  readonly client: string;
  readonly module: string;
  readonly a: number | null;
  readonly b: number | null;
}

/** Train loss of one client in one round. */
export interface ClientLoss {
  readonly client: string;
  readonly loss: number | null;
  readonly examples: number | null;
}

/** A round's client-level DP figures: ε spent so far at δ (null ε: no bound), rounds released, updates clipped. */
export interface PrivacyPoint {
  readonly epsilon: number | null;
  readonly delta: number | null;
  readonly releases: number | null;
  readonly clipped: number | null;
  readonly updates: number;
  readonly noiseStd: number | null;
}

/** One closed round (a coordinator's `round_closed`, or a joined client's `join_round_closed`). */
export interface RoundPoint {
  readonly round: number;
  readonly aggregated: boolean;
  readonly closedAt: number;
  readonly durationMs: number | null;
  /** Clients sampled and clients whose updates were aggregated (a joined client knows only the latter). */
  readonly sampled: number;
  readonly participants: number;
  readonly meanLoss: number | null;
  /** Mean over modules of the relative deviation of plain averaging (given directly by `join_round_closed`). */
  readonly meanRelativeDeviation: number | null;
  readonly clientLoss: readonly ClientLoss[];
  readonly modules: readonly ModulePoint[];
  readonly clientDiffs: readonly ClientModuleDiff[];
  /** Bytes on the wire (sent + received), null when not reported. */
  readonly bytes: number | null;
  /** Client-level DP (the record's `privacy`); absent for a federation without it. */
  readonly privacy?: PrivacyPoint;
}

/** Eval figures of the global model after a round (simulation). */
export interface EvalPoint {
  readonly round: number;
  readonly loss: number | null;
  readonly accuracy: number | null;
}

/**
 * A pooled (≤ 32×32) picture of one module's round update of the effective weight W0 + s·B̄Ā, in
 * out × in orientation; the coordinator pools max |ΔW| per block (all values ≥ 0).
 */
export interface HeatmapView {
  readonly module: string;
  readonly round: number;
  readonly rows: number;
  readonly cols: number;
  /** Row-major, rows × cols; null cells were not finite. Empty when the coordinator skipped it (see `note`). */
  readonly values: readonly (number | null)[];
  /** Shape of the full update it was pooled from (out × in), when given. */
  readonly sourceRows: number | null;
  readonly sourceCols: number | null;
  /** max |ΔW| and ‖ΔW‖_F of the whole module. */
  readonly maxAbs: number | null;
  readonly norm: number | null;
  /** Why there are no values (e.g. the dense update was too costly to form). */
  readonly note: string | null;
}

/** `method_done`'s figures of a simulated method. */
export interface RunSummary {
  readonly evalLoss: number | null;
  readonly evalAccuracy: number | null;
  readonly meanRelativeDeviation: number | null;
  readonly seconds: number | null;
}

/** One run: a hosted federation, a joined one, or one method of a simulation. */
export interface RunState {
  /** Method of a simulation, or '' for a plain federation. */
  readonly key: string;
  readonly phase: FederationPhase;
  /** Current (or last) round, 0 before the first. */
  readonly round: number;
  readonly totalRounds: number | null;
  /** The current round's sampled clients, those that reported and those that failed or were rejected. */
  readonly sampled: readonly string[];
  readonly reported: readonly string[];
  readonly failed: readonly string[];
  readonly quorum: number | null;
  readonly clients: readonly ClientState[];
  /** Closed rounds, oldest first. */
  readonly rounds: readonly RoundPoint[];
  readonly evals: readonly EvalPoint[];
  /** Latest heatmap per module, in layout order of first arrival. */
  readonly heatmaps: readonly HeatmapView[];
  readonly summary: RunSummary | null;
}

/** A line about a federation (warnings, errors, rejected peers). */
export interface Note {
  readonly time: number;
  readonly level: 'info' | 'warn' | 'error';
  readonly text: string;
}

/** What `simulation_started` announced. */
export interface SimulationInfo {
  readonly methods: readonly string[];
  readonly clients: number | null;
  readonly rounds: number | null;
  readonly model: string;
  readonly data: string;
}

/** Everything known about one federation. */
export interface FederationState {
  readonly id: string;
  readonly kind: FederationKind;
  readonly label: string;
  /** ws:// URL (host: once listening; join and remote: from the start). */
  readonly url: string | null;
  /** Output / run folder on this machine (simulation and host). */
  readonly outDir: string | null;
  /** True while its CLI child process runs (set by the extension, never by an event). */
  readonly live: boolean;
  readonly phase: FederationPhase;
  /** Host: the strategy; simulation: the method running now (the key of the active run). */
  readonly method: string | null;
  /** Rounds per run it was started with (settings, or `simulation_started`); a run may learn its own. */
  readonly totalRounds: number | null;
  readonly runs: readonly RunState[];
  readonly simulation: SimulationInfo | null;
  /** Hosted with manual rounds: each round waits for FedEx: Start Round. */
  readonly manualRounds: boolean;
  /** Manual rounds: the round that waits for Start Round and the clients it needs (from `round_ready`), until it starts. */
  readonly ready: { readonly round: number; readonly minClients: number } | null;
  /** The joined client's id (join only). */
  readonly clientId: string | null;
  /** The latest notes (at most MAX_NOTES, stateUpdates.ts). */
  readonly notes: readonly Note[];
  readonly lastError: string | null;
  readonly reportJson: string | null;
  readonly reportHtml: string | null;
  /** Events folded so far (of any type). */
  readonly eventCount: number;
  readonly startedAt: number | null;
  readonly updatedAt: number | null;
}

/** One event of a federation's stream: a declared one, or one of a type a newer CLI added. */
export type FederationEvent = CliEvent | { readonly type: string; readonly time: number; readonly method?: string };

/** A fresh state for a federation about to start (or a remote one from settings). */
export function initialFederation(init: {
  id: string;
  kind: FederationKind;
  label: string;
  url?: string | null;
  outDir?: string | null;
  method?: string | null;
  totalRounds?: number | null;
  manualRounds?: boolean;
  live?: boolean;
}): FederationState {
  const live = init.live ?? init.kind !== 'remote';
  return {
    id: init.id,
    kind: init.kind,
    label: init.label,
    url: init.url ?? null,
    outDir: init.outDir ?? null,
    live,
    phase: !live ? 'idle' : init.kind === 'join' ? 'connecting' : 'starting',
    method: init.method ?? null,
    totalRounds: init.totalRounds ?? null,
    runs: [],
    simulation: null,
    manualRounds: init.manualRounds === true,
    ready: null,
    clientId: null,
    notes: [],
    lastError: null,
    reportJson: null,
    reportHtml: null,
    eventCount: 0,
    startedAt: null,
    updatedAt: null,
  };
}

const HANDLERS: Handlers = { ...RUN_HANDLERS, ...JOIN_HANDLERS };

/** Applies one event of the federation's stream. Unknown event types change nothing but the count and the time. */
export function reduceFederation(state: FederationState, event: FederationEvent): FederationState {
  const time = typeof event.time === 'number' && Number.isFinite(event.time) ? event.time : null;
  const counted: FederationState = { ...state, eventCount: state.eventCount + 1, startedAt: state.startedAt ?? time, updatedAt: time ?? state.updatedAt };
  const handler = Object.hasOwn(HANDLERS, event.type) ? HANDLERS[event.type] : undefined;
  return handler === undefined ? counted : handler(counted, event as unknown as Fields, time ?? 0);
}

/** The run the federation is in now (the current method of a simulation), if it has begun. */
export function activeRun(s: FederationState): RunState | undefined {
  const key = activeRunKey(s);
  return s.runs.find((r) => r.key === key);
}

/** The active run's current round (0 before the first). */
export function currentRound(s: FederationState): number {
  return activeRun(s)?.round ?? 0;
}

/** The active run's number of rounds, else the federation's. */
export function roundsTotal(s: FederationState): number | null {
  return activeRun(s)?.totalRounds ?? s.totalRounds;
}

/** The latest warning, or null. */
export function lastWarning(s: FederationState): string | null {
  for (let i = s.notes.length - 1; i >= 0; i--) if (s.notes[i].level === 'warn') return s.notes[i].text;
  return null;
}

/**
 * The state after the CLI process exited: not live, and a final phase (for the federation and its
 * active run) if the stream had none. When it failed without an `error` event, `lastLog` (its last
 * stderr line, e.g. a usage error) says why.
 */
export function federationExited(state: FederationState, exit: { code: number | null; signal: string | null; stopped: boolean; error?: string }, lastLog?: string): FederationState {
  if (TERMINAL_PHASES.has(state.phase)) return { ...state, live: false };
  const ended = (phase: FederationPhase, patch: Partial<FederationState> = {}): FederationState => {
    const key = activeRunKey(state);
    const runs = state.runs.map((r) => (r.key === key && !TERMINAL_PHASES.has(r.phase) ? { ...r, phase } : r));
    return { ...state, ...patch, live: false, phase, runs };
  };
  if (exit.stopped) return ended('stopped');
  if (exit.code === 0) return ended('done');
  const why = exit.error ?? (exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${String(exit.code)}`);
  const fallback = lastLog !== undefined && lastLog.trim() !== '' && exit.error === undefined ? `${lastLog.trim()} (${why})` : `the fedex process ended unexpectedly (${why})`;
  return ended('failed', { lastError: state.lastError ?? fallback });
}
