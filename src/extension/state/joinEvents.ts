/**
 * The fold's handlers of `fedex join`'s events (JoinEventMap in src/federation/events/events.ts):
 * the client's own view of a federation, one run (''). It sees no per-module records, only the
 * round's mean loss and mean relative deviation, which feed the same rounds, loss and deviation
 * figures as a coordinator's records.
 */
import type { ClientState, FederationState, RoundPoint } from './federationState.js';
import { TERMINAL_PHASES, type FederationPhase } from './phases.js';
import { num, str, type Fields } from './read.js';
import { addNote, setRunPhase, updateClient, updateRun, upsertByRound, type Handlers } from './stateUpdates.js';

/** `s` with this client (`clientId` from join_welcomed) changed in its run; nothing before it was welcomed. */
function self(s: FederationState, f: (c: ClientState) => ClientState): FederationState {
  const id = s.clientId;
  return id === null ? s : updateRun(s, '', (r) => updateClient(r, id, f));
}

/** `join_done`'s reason as a phase (leaving is a stop). */
function donePhase(reason: string | null): FederationPhase {
  return reason === 'failed' ? 'failed' : reason === 'stopped' || reason === 'left' ? 'stopped' : 'done';
}

function roundText(p: Fields): string {
  return String(num(p.round) ?? '?');
}

export const JOIN_HANDLERS: Handlers = {
  join_connected: (s, p) => ({ ...setRunPhase(s, '', 'waiting'), url: str(p.url) ?? s.url, phase: 'waiting' }),
  join_welcomed: (s, p) => {
    const clientId = str(p.clientId) ?? 'me';
    const next = updateRun(s, '', (r) => ({ ...updateClient(r, clientId, (c) => ({ ...c, connected: true })), round: Math.max(r.round, num(p.currentRound) ?? 0) }));
    return { ...next, clientId, phase: 'waiting' };
  },
  join_reconnecting: (s, p, time) => addNote({ ...s, phase: 'reconnecting' }, time, 'warn', `reconnecting (attempt ${num(p.attempt) ?? '?'}): ${str(p.message) ?? ''}`),
  join_disconnected: (s) => {
    const offline = self(s, (c) => ({ ...c, connected: false }));
    return TERMINAL_PHASES.has(s.phase) ? offline : { ...offline, phase: 'disconnected' };
  },
  join_round_started: (s, p) => {
    const next = updateRun(s, '', (r) => ({ ...r, round: num(p.round) ?? r.round + 1, phase: 'training' }));
    return { ...self(next, (c) => ({ ...c, connected: true, status: 'training' })), phase: 'training' };
  },
  join_uploaded: (s) => ({ ...self(setRunPhase(s, '', 'uploaded'), (c) => ({ ...c, status: 'uploaded' })), phase: 'uploaded' }),
  join_update_rejected: (s, p, time) => addNote(self(s, (c) => ({ ...c, status: 'rejected' })), time, 'warn', `round ${roundText(p)}: update rejected (${str(p.code) ?? '?'}): ${str(p.reason) ?? ''}`),
  join_training_failed: (s, p, time) => addNote(self(s, (c) => ({ ...c, status: 'failed' })), time, 'warn', `round ${roundText(p)}: training failed: ${str(p.message) ?? ''}`),
  join_round_closed: (s, p, time) => {
    const round = num(p.round);
    if (round === null) return s;
    const participants = num(p.participants) ?? 0;
    const point: RoundPoint = {
      round,
      aggregated: p.aggregated !== false,
      closedAt: time,
      durationMs: null,
      sampled: 0,
      participants,
      meanLoss: num(p.meanLoss),
      meanRelativeDeviation: num(p.meanRelativeDeviation),
      clientLoss: [],
      modules: [],
      clientDiffs: [],
      bytes: null,
    };
    const next = updateRun(s, '', (r) => ({ ...r, rounds: upsertByRound(r.rounds, point), round: Math.max(r.round, round), phase: 'closed' }));
    return { ...next, phase: 'closed' };
  },
  join_done: (s, p) => {
    const phase = donePhase(str(p.reason));
    return { ...setRunPhase(s, '', phase), phase };
  },
};
