/**
 * The fold's handlers of the coordinator's and the simulation's events (CoordinatorEventMap and
 * SimulationEventMap, src/federation/events/events.ts). An event belongs to a run: its `method` in
 * a simulation, '' elsewhere; a run's phase change moves the federation's when the run is active.
 */
import type { FederationState, RunState } from './federationState.js';
import { TERMINAL_PHASES, type FederationPhase } from './phases.js';
import { num, str, strings, type Fields } from './read.js';
import { readHeatmaps, readRoundClosed } from './roundRecords.js';
import { addNote, addOnce, follow, hasMethodRuns, putRun, runKeyOf, runOf, setRunPhase, updateClient, updateRun, upsertByRound, type Handlers } from './stateUpdates.js';

/** `federation_done`'s reason as a phase. */
function endPhase(reason: string | null): FederationPhase {
  return reason === 'stopped' ? 'stopped' : reason === 'failed' ? 'failed' : 'done';
}

/** Clients changed while a round waits for Start Round: ready again with enough of them, else waiting. */
function readiness(s: FederationState, key: string): FederationState {
  if (s.ready === null || (s.phase !== 'ready' && s.phase !== 'waiting')) return s;
  const connected = s.runs.find((r) => r.key === key)?.clients.filter((c) => c.connected).length ?? 0;
  return setRunPhase(s, key, connected >= s.ready.minClients ? 'ready' : 'waiting');
}

/** A client's update was refused or its training failed: marked, counted as failed, noted. */
function clientFailed(status: 'rejected' | 'failed'): Handlers[string] {
  return (s, p, time) => {
    const id = str(p.clientId) ?? '?';
    const next = updateRun(s, runKeyOf(s, p), (r) => ({ ...updateClient(r, id, (c) => ({ ...c, status })), failed: addOnce(r.failed, id) }));
    return addNote(next, time, 'warn', `${id}: ${str(p.reason) ?? str(p.code) ?? 'failed'}`);
  };
}

/** A peer that never became a client (refused at the door, or a protocol error). */
function peerNote(s: FederationState, p: Fields, time: number): FederationState {
  return addNote(s, time, 'info', `${str(p.code) ?? 'rejected'}: ${str(p.message) ?? ''}`);
}

export const RUN_HANDLERS: Handlers = {
  simulation_started: (s, p) => {
    const methods = strings(p.methods);
    const rounds = num(p.rounds);
    let next: FederationState = {
      ...s,
      simulation: { methods, clients: num(p.clients), rounds, model: str(p.model) ?? '', data: str(p.data) ?? '' },
      totalRounds: rounds ?? s.totalRounds,
      outDir: str(p.out) ?? s.outDir,
      phase: 'starting',
    };
    // Every method's run exists from the start, in the order they will run.
    for (const m of methods) next = updateRun(next, m, (r) => ({ ...r, totalRounds: rounds ?? r.totalRounds }));
    return next;
  },
  method_started: (s, p) => {
    const method = str(p.method);
    if (method === null) return s;
    return { ...updateRun(s, method, (r) => ({ ...r, phase: 'starting' })), method, phase: 'starting' };
  },
  listening: (s, p) => {
    const key = runKeyOf(s, p);
    const next = updateRun(s, key, (r) => ({ ...r, phase: 'waiting', round: num(p.resumedFromRound) ?? r.round, totalRounds: num(p.rounds) ?? r.totalRounds }));
    // A simulation's loopback URL is not the federation's.
    return follow({ ...next, url: hasMethodRuns(s) ? s.url : (str(p.url) ?? s.url), outDir: s.outDir ?? str(p.runDir) }, key, 'waiting');
  },
  client_joined: (s, p) => {
    const key = runKeyOf(s, p);
    const next = updateRun(s, key, (r) => updateClient(r, str(p.clientId) ?? '?', (c) => ({ ...c, connected: true, status: c.status === 'left' ? 'joined' : c.status }), str(p.name)));
    return readiness(next, key);
  },
  client_left: (s, p) => {
    const key = runKeyOf(s, p);
    const next = updateRun(s, key, (r) => updateClient(r, str(p.clientId) ?? '?', (c) => ({ ...c, connected: false, status: 'left' }), str(p.name)));
    return readiness(next, key);
  },
  client_rejected: peerNote,
  protocol_error: peerNote,
  round_ready: (s, p) => {
    const key = runKeyOf(s, p);
    const run = s.runs.find((r) => r.key === key);
    const ready = { round: num(p.round) ?? (run?.round ?? 0) + 1, minClients: num(p.minClients) ?? 0 };
    return { ...setRunPhase(s, key, 'ready'), manualRounds: true, ready, phase: 'ready' };
  },
  round_started: (s, p) => {
    const key = runKeyOf(s, p);
    const sampled = strings(p.sampled);
    const next = updateRun(s, key, (r) => {
      let run: RunState = { ...r, round: num(p.round) ?? r.round + 1, phase: 'training', sampled, quorum: num(p.quorum), reported: [], failed: [] };
      for (const id of sampled) run = updateClient(run, id, (c) => ({ ...c, status: 'training', step: null, totalSteps: null }));
      return run;
    });
    return { ...follow(next, key, 'training'), ready: null };
  },
  client_progress: (s, p) => {
    const key = runKeyOf(s, p);
    const r = runOf(s, key);
    // Training before the round's events (a simulated method's first steps) is training all the same.
    const phase: FederationPhase = r.phase === 'starting' || r.phase === 'waiting' ? 'training' : r.phase;
    const run = updateClient(r, str(p.clientId) ?? '?', (c) => ({ ...c, status: 'training', step: num(p.step), totalSteps: num(p.totalSteps), lastLoss: num(p.loss) ?? c.lastLoss }));
    return follow(putRun(s, { ...run, phase, round: Math.max(r.round, num(p.round) ?? 0) }), key, phase);
  },
  client_round_done: (s, p) => updateRun(s, runKeyOf(s, p), (r) => updateClient(r, str(p.clientId) ?? '?', (c) => ({
    ...c,
    status: 'trained',
    lastLoss: num(p.trainLoss) ?? c.lastLoss,
    examples: num(p.examples) ?? c.examples,
    step: num(p.steps) ?? c.totalSteps ?? c.step,
    totalSteps: num(p.steps) ?? c.totalSteps,
  }))),
  update_accepted: (s, p) => {
    const key = runKeyOf(s, p);
    const id = str(p.clientId) ?? '?';
    const r = runOf(s, key);
    const reported = addOnce(r.reported, id);
    const run = updateClient(r, id, (c) => ({ ...c, status: 'uploaded', lastLoss: num(p.trainLoss) ?? c.lastLoss, examples: num(p.examples) ?? c.examples }));
    // Every sampled client accounted for: the coordinator aggregates.
    const all = r.sampled.length > 0 && reported.length + r.failed.length >= r.sampled.length;
    const next = putRun(s, { ...run, reported, phase: all ? 'aggregating' : r.phase });
    return all ? follow(next, key, 'aggregating') : next;
  },
  update_rejected: clientFailed('rejected'),
  client_failed: clientFailed('failed'),
  round_closed: (s, p, time) => {
    const point = readRoundClosed(p, time);
    if (point === null) return s;
    const key = runKeyOf(s, p);
    const next = updateRun(s, key, (r) => {
      let run: RunState = { ...r, rounds: upsertByRound(r.rounds, point), round: Math.max(r.round, point.round), phase: 'closed' };
      for (const loss of point.clientLoss) run = updateClient(run, loss.client, (c) => ({ ...c, lastLoss: loss.loss ?? c.lastLoss, examples: loss.examples ?? c.examples }));
      return run;
    });
    return follow(next, key, 'closed');
  },
  update_heatmap: (s, p) => {
    const maps = readHeatmaps(p);
    if (maps.length === 0) return s;
    return updateRun(s, runKeyOf(s, p), (r) => {
      // The latest per module, in layout order of first arrival.
      const heatmaps = [...r.heatmaps];
      for (const h of maps) {
        const i = heatmaps.findIndex((x) => x.module === h.module);
        if (i < 0) heatmaps.push(h);
        else if (h.round >= heatmaps[i].round) heatmaps[i] = h;
      }
      return { ...r, heatmaps };
    });
  },
  model_transfer: (s, p, time) => addNote(s, time, 'info', `${str(p.name) ?? str(p.clientId) ?? '?'}: base model transfer ${str(p.status) ?? ''}`),
  round_evaluated: (s, p) => {
    const round = num(p.round);
    if (round === null) return s;
    return updateRun(s, runKeyOf(s, p), (r) => ({ ...r, evals: upsertByRound(r.evals, { round, loss: num(p.evalLoss), accuracy: num(p.evalAccuracy) }) }));
  },
  federation_done: (s, p) => {
    const phase = endPhase(str(p.reason));
    const key = runKeyOf(s, p);
    // A simulation goes on with its next method (it is done with simulation_done); a federation ends.
    if (hasMethodRuns(s)) return updateRun(s, key, (r) => ({ ...r, phase }));
    return { ...updateRun(s, key, (r) => ({ ...r, phase })), phase };
  },
  method_done: (s, p) => updateRun(s, runKeyOf(s, p), (r) => ({
    ...r,
    phase: TERMINAL_PHASES.has(r.phase) && r.phase !== 'done' ? r.phase : 'done',
    summary: { evalLoss: num(p.evalLoss), evalAccuracy: num(p.evalAccuracy), meanRelativeDeviation: num(p.meanRelativeDeviation), seconds: num(p.seconds) },
  })),
  simulation_done: (s, p) => ({ ...s, reportJson: str(p.reportJson), reportHtml: str(p.reportHtml), phase: 'done' }),
  warning: (s, p, time) => addNote(s, time, 'warn', str(p.message) ?? 'warning'),
  error: (s, p, time) => {
    const message = str(p.message) ?? 'error';
    const key = runKeyOf(s, p);
    const failed = s.runs.some((r) => r.key === key) ? updateRun(s, key, (r) => ({ ...r, phase: 'failed' })) : s;
    return addNote({ ...failed, phase: 'failed', lastError: message }, time, 'error', message);
  },
};
