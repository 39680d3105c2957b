/**
 * Events of `fedex join` (JoinEventMap in src/federation/events/events.ts): the client's own
 * view of a federation. It sees no per-module records, only the round's mean loss and mean relative
 * deviation, which feed the same loss and deviation charts.
 */
import { client, note, run, type FederationView } from './model.js';
import { num, str, type Fields } from './read.js';

/** Applies one `join_*` event to a federation (run key ''). */
export function applyJoinEvent(view: FederationView, type: string, p: Fields, time: number): void {
  const r = run(view, '');
  view.activeRun = '';
  r.updatedAt = time;
  r.startedAt ??= time;
  const self = view.runs[0]?.clients[0]?.id;
  switch (type) {
    case 'join_connected':
      r.phase = 'waiting';
      break;
    case 'join_welcomed': {
      const c = client(r, str(p.clientId) ?? 'me');
      c.connected = true;
      r.round = num(p.currentRound) ?? r.round;
      break;
    }
    case 'join_reconnecting':
      note(view, time, 'warn', `reconnecting (attempt ${num(p.attempt) ?? '?'}): ${str(p.message) ?? ''}`);
      break;
    case 'join_disconnected':
      if (self !== undefined) client(r, self).connected = false;
      break;
    case 'join_round_started':
      r.round = num(p.round) ?? r.round + 1;
      r.phase = 'training';
      if (self !== undefined) client(r, self).status = 'training';
      break;
    case 'join_uploaded':
      r.phase = 'aggregating';
      if (self !== undefined) client(r, self).status = 'reported';
      break;
    case 'join_update_rejected':
      if (self !== undefined) client(r, self).status = 'failed';
      note(view, time, 'warn', `update of round ${num(p.round) ?? '?'} rejected: ${str(p.reason) ?? str(p.code) ?? ''}`);
      break;
    case 'join_training_failed':
      if (self !== undefined) client(r, self).status = 'failed';
      note(view, time, 'warn', `training of round ${num(p.round) ?? '?'} failed: ${str(p.message) ?? ''}`);
      break;
    case 'join_round_closed': {
      const round = num(p.round);
      if (round === null) break;
      r.rounds = [...r.rounds.filter((x) => x.round !== round), {
        round, aggregated: p.aggregated !== false, closedAt: time, durationMs: null, meanLoss: num(p.meanLoss),
        meanRelativeDeviation: num(p.meanRelativeDeviation), clientLoss: [], modules: [], clientDiffs: [], bytes: null,
      }].sort((x, y) => x.round - y.round);
      r.phase = 'closed';
      break;
    }
    case 'join_done': {
      const reason = str(p.reason);
      r.phase = reason === 'failed' ? 'failed' : reason === 'stopped' || reason === 'left' ? 'stopped' : 'done';
      view.done = true;
      break;
    }
    default:
      break;
  }
}
