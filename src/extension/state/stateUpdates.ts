/**
 * The small immutable updates the fold's handlers are made of (runEvents.ts, joinEvents.ts): a run,
 * a client, a note, the federation's phase following its active run's. Each returns a new state
 * that shares everything it did not change.
 */
import type { ClientState, FederationState, Note, RunState } from './federationState.js';
import type { FederationPhase } from './phases.js';
import type { Fields } from './read.js';

/** Notes kept per federation (oldest dropped first). */
export const MAX_NOTES = 50;

/** A handler of one event type: the state (already counted), the payload, the event's time. */
export type Handler = (s: FederationState, p: Fields, time: number) => FederationState;

/** Handlers per event type. */
export type Handlers = Readonly<Record<string, Handler>>;

/** True when the federation holds one run per method (a simulation). */
export function hasMethodRuns(s: FederationState): boolean {
  return s.kind === 'simulation' || s.simulation !== null;
}

/** The key of the run an event belongs to: its method in a simulation, '' elsewhere (update_heatmap's `method` is the strategy). */
export function runKeyOf(s: FederationState, p: Fields): string {
  return hasMethodRuns(s) && typeof p.method === 'string' ? p.method : '';
}

/** The key of the run the federation is in now. */
export function activeRunKey(s: FederationState): string {
  return hasMethodRuns(s) ? (s.method ?? '') : '';
}

/** A new, empty run. */
export function createRun(key: string, totalRounds: number | null): RunState {
  return { key, phase: 'starting', round: 0, totalRounds, sampled: [], reported: [], failed: [], quorum: null, clients: [], rounds: [], evals: [], heatmaps: [], summary: null };
}

/** Run `key`, or a new one (with the federation's total rounds) when it has none yet. */
export function runOf(s: FederationState, key: string): RunState {
  return s.runs.find((r) => r.key === key) ?? createRun(key, s.totalRounds);
}

/** `s` with `run` in place of the run of its key (added when new). */
export function putRun(s: FederationState, run: RunState): FederationState {
  const i = s.runs.findIndex((r) => r.key === run.key);
  return { ...s, runs: i < 0 ? [...s.runs, run] : s.runs.map((r, j) => (j === i ? run : r)) };
}

/** `s` with run `key` replaced by `f(run)`; the run is created first when missing. */
export function updateRun(s: FederationState, key: string, f: (r: RunState) => RunState): FederationState {
  return putRun(s, f(runOf(s, key)));
}

/** `s` with its phase set to `phase` when run `key` is the active one (an event of another run leaves it). */
export function follow(s: FederationState, key: string, phase: FederationPhase): FederationState {
  return key === activeRunKey(s) && s.phase !== phase ? { ...s, phase } : s;
}

/** `s` with run `key`'s phase set and the federation's following it. */
export function setRunPhase(s: FederationState, key: string, phase: FederationPhase): FederationState {
  return follow(updateRun(s, key, (r) => (r.phase === phase ? r : { ...r, phase })), key, phase);
}

/** A run with client `id` replaced by `f(client)`, created first (joined, connected) when missing. */
export function updateClient(r: RunState, id: string, f: (c: ClientState) => ClientState, name?: string | null): RunState {
  const i = r.clients.findIndex((c) => c.id === id);
  const named = (c: ClientState): ClientState => (name !== undefined && name !== null && name !== '' && c.name !== name ? { ...c, name } : c);
  if (i < 0) {
    const fresh: ClientState = { id, name: id, connected: true, status: 'joined', step: null, totalSteps: null, lastLoss: null, examples: null };
    return { ...r, clients: [...r.clients, f(named(fresh))] };
  }
  return { ...r, clients: r.clients.map((c, j) => (j === i ? f(named(c)) : c)) };
}

/** `list` with `id` added once. */
export function addOnce(list: readonly string[], id: string): readonly string[] {
  return list.includes(id) ? list : [...list, id];
}

/** `s` with a note added (the last MAX_NOTES kept; text cut at 500 characters). */
export function addNote(s: FederationState, time: number, level: Note['level'], text: string): FederationState {
  const notes = [...s.notes, { time, level, text: text.slice(0, 500) }];
  return { ...s, notes: notes.length > MAX_NOTES ? notes.slice(notes.length - MAX_NOTES) : notes };
}

/** `items` with the one of the same round replaced (or added), sorted by round. */
export function upsertByRound<T extends { readonly round: number }>(items: readonly T[], item: T): readonly T[] {
  return [...items.filter((x) => x.round !== item.round), item].sort((x, y) => x.round - y.round);
}
