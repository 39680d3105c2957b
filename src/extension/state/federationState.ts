/**
 * What the sidebar and the status bar show about one federation, derived from its event stream by
 * a pure reducer: `reduceFederation(state, event) → state`. No vscode here. Events of unknown types
 * leave the state unchanged (a newer CLI may add some).
 */
import type { FederationKind } from '../dashboard/messages.js';
import type { StreamEvent } from '../process/jsonlLines.js';
import type { CliEventMap, CliEventType } from '../../federation/events/events.js';

/** Where a federation is in its life. */
export type FederationPhase =
  | 'idle' // a remote federation from settings, not joined
  | 'starting'
  | 'connecting'
  | 'reconnecting'
  | 'disconnected'
  | 'waiting' // for clients or for the next round
  | 'ready' // manual rounds: the clients are there, the next round waits for FedEx: Start Round
  | 'training'
  | 'uploaded' // a joined client sent its update
  | 'aggregating'
  | 'evaluating'
  | 'done'
  | 'stopped'
  | 'failed';

/** Phases after which nothing runs any more. */
export const TERMINAL_PHASES: ReadonlySet<FederationPhase> = new Set(['done', 'stopped', 'failed']);

/** One client as the host or the simulation sees it. */
export interface ClientView {
  readonly id: string;
  readonly name: string;
  readonly status: 'joined' | 'training' | 'trained' | 'uploaded' | 'rejected' | 'failed' | 'left';
  readonly examples: number | null;
  readonly lastLoss: number | null;
  readonly step: number | null;
  readonly totalSteps: number | null;
}

/** One round's figures. */
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

/** Final figures of one simulated method. */
export interface MethodResult {
  readonly method: string;
  readonly evalLoss: number | null;
  readonly evalAccuracy: number | null;
  readonly meanRelativeDeviation: number | null;
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
  /** True while its CLI child process runs. */
  readonly live: boolean;
  readonly phase: FederationPhase;
  /** Method being run (host: the strategy; simulation: the current method). */
  readonly method: string | null;
  readonly methods: readonly string[];
  /** Current (or last) round, 0 before the first. */
  readonly round: number;
  readonly totalRounds: number | null;
  readonly clients: readonly ClientView[];
  readonly rounds: readonly RoundView[];
  readonly results: readonly MethodResult[];
  /** Hosted with manual rounds: each round waits for FedEx: Start Round. */
  readonly manualRounds: boolean;
  /** Manual rounds: the round that waits for Start Round and the clients it needs (from `round_ready`), until it starts. */
  readonly ready: { readonly round: number; readonly minClients: number } | null;
  /** The joined client's id (join only). */
  readonly clientId: string | null;
  readonly lastError: string | null;
  readonly lastWarning: string | null;
  readonly reportJson: string | null;
  readonly reportHtml: string | null;
  readonly startedAt: number | null;
  readonly updatedAt: number | null;
}

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
    id: init.id, kind: init.kind, label: init.label, url: init.url ?? null, outDir: init.outDir ?? null,
    live, phase: !live ? 'idle' : init.kind === 'join' ? 'connecting' : 'starting',
    method: init.method ?? null, methods: init.method ? [init.method] : [], round: 0, totalRounds: init.totalRounds ?? null,
    manualRounds: init.manualRounds === true, ready: null, clients: [], rounds: [], results: [], clientId: null, lastError: null, lastWarning: null,
    reportJson: null, reportHtml: null, startedAt: null, updatedAt: null,
  };
}

type Payload<K extends CliEventType> = CliEventMap[K] & { readonly method?: string };

function upsertClient(clients: readonly ClientView[], id: string, patch: Partial<ClientView>): ClientView[] {
  const i = clients.findIndex((c) => c.id === id);
  const base: ClientView = i >= 0 ? clients[i] : { id, name: id, status: 'joined', examples: null, lastLoss: null, step: null, totalSteps: null };
  const next = { ...base, ...patch };
  return i >= 0 ? clients.map((c, j) => (j === i ? next : c)) : [...clients, next];
}

function upsertRound(rounds: readonly RoundView[], round: number, method: string | null, patch: Partial<RoundView>): RoundView[] {
  const i = rounds.findIndex((r) => r.round === round && r.method === method);
  const base: RoundView = i >= 0 ? rounds[i] : {
    round, method, status: 'running', sampled: 0, participants: 0, meanLoss: null, evalLoss: null, evalAccuracy: null,
    meanRelativeDeviation: null, bytes: null, durationMs: null, aggregated: null,
  };
  const next = { ...base, ...patch };
  return i >= 0 ? rounds.map((r, j) => (j === i ? next : r)) : [...rounds, next];
}

function finite(x: number | null | undefined): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

function meanOf(values: readonly (number | null)[]): number | null {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Clients changed while a round waits for Start Round: ready again with enough of them, else waiting. */
function readiness(s: FederationState, clients: ClientView[]): Partial<FederationState> {
  if (s.ready === null || (s.phase !== 'ready' && s.phase !== 'waiting')) return { clients };
  const connected = clients.filter((c) => c.status !== 'left').length;
  return { clients, phase: connected >= s.ready.minClients ? 'ready' : 'waiting' };
}

/** Handlers per event type; each returns the changed fields. */
type Reducers = { readonly [K in CliEventType]?: (s: FederationState, e: Payload<K>) => Partial<FederationState> };

const REDUCERS: Reducers = {
  simulation_started: (_s, e) => ({ methods: [...e.methods], totalRounds: e.rounds, outDir: e.out, phase: 'starting' }),
  method_started: (_s, e) => ({ method: e.method, round: 0, clients: [], phase: 'starting' }),
  listening: (s, e) => ({ url: s.kind === 'simulation' ? s.url : e.url, outDir: s.outDir ?? e.runDir, phase: 'waiting', round: e.resumedFromRound ?? s.round }),
  client_joined: (s, e) => readiness(s, upsertClient(s.clients, e.clientId, { name: e.name, status: 'joined' })),
  client_left: (s, e) => readiness(s, upsertClient(s.clients, e.clientId, { status: 'left' })),
  round_ready: (_s, e) => ({ manualRounds: true, ready: { round: e.round, minClients: e.minClients }, phase: 'ready' }),
  round_started: (s, e) => {
    let clients = s.clients;
    for (const id of e.sampled) clients = upsertClient(clients, id, { status: 'training', step: null, totalSteps: null });
    return { round: e.round, phase: 'training', ready: null, clients, rounds: upsertRound(s.rounds, e.round, e.method ?? null, { status: 'running', sampled: e.sampled.length }) };
  },
  update_accepted: (s, e) => {
    const clients = upsertClient(s.clients, e.clientId, { status: 'uploaded', examples: e.examples, lastLoss: finite(e.trainLoss) });
    const sampled = s.rounds.find((r) => r.round === e.round && r.method === (e.method ?? null))?.sampled ?? 0;
    const uploaded = clients.filter((c) => c.status === 'uploaded').length;
    return { clients, phase: sampled > 0 && uploaded >= sampled ? 'aggregating' : s.phase };
  },
  update_rejected: (s, e) => ({ clients: upsertClient(s.clients, e.clientId, { status: 'rejected' }), lastWarning: `${e.clientId}: ${e.reason}` }),
  client_failed: (s, e) => ({ clients: upsertClient(s.clients, e.clientId, { status: 'failed' }), lastWarning: `${e.clientId}: ${e.reason}` }),
  round_closed: (s, e) => {
    let clients = s.clients;
    for (const [id, c] of Object.entries(e.clients)) clients = upsertClient(clients, id, { examples: c.examples, lastLoss: finite(c.trainLoss) });
    const rounds = upsertRound(s.rounds, e.round, e.method ?? null, {
      status: 'closed', sampled: e.sampled.length, participants: e.participants.length, meanLoss: finite(e.loss?.mean),
      meanRelativeDeviation: meanOf(e.modules.map((m) => m.relativeDeviation)),
      bytes: e.traffic.sent + e.traffic.received, durationMs: e.durationMs, aggregated: e.aggregated,
    });
    return { clients, rounds, round: e.round, phase: s.kind === 'simulation' ? 'evaluating' : 'waiting' };
  },
  round_evaluated: (s, e) => ({ rounds: upsertRound(s.rounds, e.round, e.method, { evalLoss: finite(e.evalLoss), evalAccuracy: finite(e.evalAccuracy) }) }),
  federation_done: (s, e) => (s.kind === 'simulation' ? {} : { phase: e.reason === 'completed' ? 'done' : e.reason }),
  warning: (_s, e) => ({ lastWarning: e.message }),
  client_progress: (s, e) => ({
    clients: upsertClient(s.clients, e.clientId, { status: 'training', step: e.step, totalSteps: e.totalSteps, lastLoss: finite(e.loss) }),
    round: Math.max(s.round, e.round), phase: s.phase === 'starting' || s.phase === 'waiting' ? 'training' : s.phase,
  }),
  client_round_done: (s, e) => ({ clients: upsertClient(s.clients, e.clientId, { status: 'trained', lastLoss: finite(e.trainLoss), examples: e.examples, step: e.steps }) }),
  method_done: (s, e) => ({
    results: [...s.results.filter((r) => r.method !== e.method), { method: e.method, evalLoss: finite(e.evalLoss), evalAccuracy: finite(e.evalAccuracy), meanRelativeDeviation: finite(e.meanRelativeDeviation) }],
    // A finished method has no running round (centralized rounds have no round_closed, only round_evaluated).
    rounds: s.rounds.map((r) => (r.method === e.method && r.status === 'running' ? { ...r, status: 'closed' as const } : r)),
  }),
  simulation_done: (_s, e) => ({ reportJson: e.reportJson, reportHtml: e.reportHtml, phase: 'done' }),
  error: (_s, e) => ({ lastError: e.message, phase: 'failed' }),
  join_connected: (_s, e) => ({ url: e.url, phase: 'waiting' }),
  join_welcomed: (s, e) => ({ clientId: e.clientId, round: Math.max(s.round, e.currentRound), phase: 'waiting' }),
  join_reconnecting: (_s, e) => ({ phase: 'reconnecting', lastWarning: `reconnecting (attempt ${e.attempt}): ${e.message}` }),
  join_disconnected: (s) => (TERMINAL_PHASES.has(s.phase) ? {} : { phase: 'disconnected' }),
  join_round_started: (s, e) => ({ round: e.round, phase: 'training', rounds: upsertRound(s.rounds, e.round, null, { status: 'running' }) }),
  join_uploaded: () => ({ phase: 'uploaded' }),
  join_update_rejected: (_s, e) => ({ lastWarning: `round ${e.round}: update rejected (${e.code}): ${e.reason}` }),
  join_round_closed: (s, e) => ({
    phase: 'waiting',
    rounds: upsertRound(s.rounds, e.round, null, {
      status: 'closed', participants: e.participants, meanLoss: finite(e.meanLoss), meanRelativeDeviation: finite(e.meanRelativeDeviation), aggregated: e.aggregated !== false,
    }),
  }),
  join_training_failed: (_s, e) => ({ lastWarning: `round ${e.round}: training failed: ${e.message}` }),
  join_done: (_s, e) => ({ phase: e.reason === 'completed' ? 'done' : e.reason === 'left' ? 'stopped' : e.reason }),
};

/** Applies one event of the federation's stream. Unknown event types change nothing but `updatedAt`. */
export function reduceFederation(state: FederationState, event: StreamEvent): FederationState {
  const reducer = (REDUCERS as Record<string, ((s: FederationState, e: StreamEvent) => Partial<FederationState>) | undefined>)[event.type];
  const time = typeof event.time === 'number' ? event.time : null;
  const patch = reducer === undefined ? {} : reducer(state, event);
  return { ...state, ...patch, startedAt: state.startedAt ?? time, updatedAt: time ?? state.updatedAt };
}

/**
 * The state after the CLI process exited: not live, and a final phase if the stream had none. When
 * it failed without an `error` event, `lastLog` (its last stderr line, e.g. a usage error) says why.
 */
export function federationExited(state: FederationState, exit: { code: number | null; signal: string | null; stopped: boolean; error?: string }, lastLog?: string): FederationState {
  if (TERMINAL_PHASES.has(state.phase)) return { ...state, live: false };
  if (exit.stopped) return { ...state, live: false, phase: 'stopped' };
  if (exit.code === 0) return { ...state, live: false, phase: 'done' };
  const why = exit.error ?? (exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${String(exit.code)}`);
  const fallback = lastLog !== undefined && lastLog.trim() !== '' && exit.error === undefined ? `${lastLog.trim()} (${why})` : `the fedex process ended unexpectedly (${why})`;
  return { ...state, live: false, phase: 'failed', lastError: state.lastError ?? fallback };
}
