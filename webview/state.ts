/**
 * The dashboard reducer: extension messages and stream events → the dashboard model (model.ts).
 * No DOM. Payload fields are read defensively (the stream is JSON from a CLI, numbers that were not
 * finite arrive as null, a newer CLI may add event types): a malformed field becomes null, an
 * unknown event is counted and ignored, nothing throws.
 *
 * The functions update the state they are given in place and return it (the model is plain JSON
 * owned by the webview; cloning it per event would cost more than the charts).
 */
import type { DashboardEvent, DashboardFederation, ExtensionToWebviewMessage } from '../src/extension/dashboard/messages.js';
import { applyJoinEvent } from './joinEvents.js';
import { client, createDashboardState, createFederationView, DASHBOARD_STATE_VERSION, note, run, type DashboardState, type FederationView } from './model.js';
import { readHeatmaps, readRoundClosed } from './records.js';
import { arr, fields, num, str, strings, type Fields } from './read.js';

/** Applies one message from the extension. */
export function applyMessage(state: DashboardState, message: ExtensionToWebviewMessage): DashboardState {
  switch (message.type) {
    case 'init': {
      // The extension's history is authoritative; federations it no longer knows stay, marked restored.
      const kept = state.federations.filter((f) => !message.federations.some((g) => g.id === f.id));
      for (const f of kept) {
        f.restored = true;
        f.live = false;
      }
      state.federations = [...message.federations.map((info) => {
        const view = createFederationView(info);
        for (const event of message.history[info.id] ?? []) applyEvent(view, event);
        return view;
      }), ...kept];
      state.selected = pickSelected(state, message.selected ?? state.selected);
      return state;
    }
    case 'federations':
      updateFederations(state, message.federations);
      return state;
    case 'events': {
      const view = federation(state, message.federationId);
      for (const event of message.events) applyEvent(view, event);
      state.selected ??= view.id;
      return state;
    }
    case 'select':
      if (state.federations.some((f) => f.id === message.federationId)) {
        if (state.selected !== message.federationId) state.ui = { ...state.ui, run: null, module: null, round: null };
        state.selected = message.federationId;
      }
      return state;
  }
}

function pickSelected(state: DashboardState, wanted: string | null): string | null {
  if (wanted !== null && state.federations.some((f) => f.id === wanted)) return wanted;
  return state.federations[0]?.id ?? null;
}

function updateFederations(state: DashboardState, list: readonly DashboardFederation[]): void {
  const next: FederationView[] = [];
  for (const info of list) {
    const view = state.federations.find((f) => f.id === info.id) ?? createFederationView(info);
    view.label = info.label;
    view.kind = info.kind;
    view.live = info.live;
    view.restored = false;
    next.push(view);
  }
  state.federations = [...next, ...state.federations.filter((f) => f.restored && !list.some((g) => g.id === f.id))];
  state.selected = pickSelected(state, state.selected);
}

/** The federation view of `id`, created (labelled by its id) when events arrive before `federations`. */
function federation(state: DashboardState, id: string): FederationView {
  let view = state.federations.find((f) => f.id === id);
  if (view === undefined) {
    view = createFederationView({ id, label: id, kind: 'host', live: true });
    state.federations.push(view);
  }
  return view;
}

function addUnique(list: string[], id: string): void {
  if (!list.includes(id)) list.push(id);
}

/** Applies one stream event to a federation. Unknown types are ignored. */
export function applyEvent(view: FederationView, event: DashboardEvent): FederationView {
  const p: Fields = event as unknown as Fields;
  const time = event.time;
  view.eventCount++;
  if (event.type.startsWith('join_')) {
    applyJoinEvent(view, event.type, p, time);
    return view;
  }
  if (event.type === 'simulation_started') {
    const methods = strings(p.methods);
    view.simulation = { methods, clients: num(p.clients), rounds: num(p.rounds), model: str(p.model) ?? '', data: str(p.data) ?? '' };
    view.kind = 'simulation';
    for (const m of methods) run(view, m).totalRounds = num(p.rounds);
    return view;
  }
  if (event.type === 'simulation_done') {
    view.done = true;
    view.live = false;
    return view;
  }
  // Only a simulation has several runs; elsewhere `method` (update_heatmap carries the strategy) is no run key.
  const key = view.simulation !== null && typeof event.method === 'string' ? event.method : '';
  const r = run(view, key);
  view.activeRun = key;
  r.updatedAt = time;
  r.startedAt ??= time;
  if (r.totalRounds === null && view.simulation !== null) r.totalRounds = view.simulation.rounds;
  switch (event.type) {
    case 'method_started':
      r.phase = 'waiting';
      r.startedAt = time;
      break;
    case 'listening': {
      r.phase = 'waiting';
      const resumed = num(p.resumedFromRound);
      if (resumed !== null) r.round = resumed;
      const total = num(p.rounds);
      if (total !== null) r.totalRounds = total;
      break;
    }
    case 'client_joined':
      client(r, str(p.clientId) ?? '?', str(p.name) ?? undefined).connected = true;
      break;
    case 'client_left': {
      const c = client(r, str(p.clientId) ?? '?', str(p.name) ?? undefined);
      c.connected = false;
      c.status = 'left';
      break;
    }
    case 'round_ready':
      // Manual rounds: the clients are there; the round waits for the operator (FedEx: Start Round).
      r.phase = 'ready';
      break;
    case 'round_started': {
      r.round = num(p.round) ?? r.round + 1;
      r.phase = 'training';
      r.sampled = strings(p.sampled);
      r.quorum = num(p.quorum);
      r.reported = [];
      r.failed = [];
      for (const id of r.sampled) Object.assign(client(r, id), { status: 'training', step: null, totalSteps: null });
      break;
    }
    case 'client_progress': {
      const c = client(r, str(p.clientId) ?? '?');
      c.status = 'training';
      c.step = num(p.step);
      c.totalSteps = num(p.totalSteps);
      c.lastLoss = num(p.loss) ?? c.lastLoss;
      break;
    }
    case 'client_round_done': {
      const c = client(r, str(p.clientId) ?? '?');
      c.status = 'trained';
      c.lastLoss = num(p.trainLoss) ?? c.lastLoss;
      c.examples = num(p.examples) ?? c.examples;
      c.step = num(p.steps) ?? c.totalSteps ?? c.step;
      c.totalSteps = num(p.steps) ?? c.totalSteps;
      break;
    }
    case 'update_accepted': {
      const id = str(p.clientId) ?? '?';
      const c = client(r, id);
      c.status = 'reported';
      c.lastLoss = num(p.trainLoss) ?? c.lastLoss;
      c.examples = num(p.examples) ?? c.examples;
      addUnique(r.reported, id);
      if (r.sampled.length > 0 && r.reported.length + r.failed.length >= r.sampled.length) r.phase = 'aggregating';
      break;
    }
    case 'update_rejected':
    case 'client_failed': {
      const id = str(p.clientId) ?? '?';
      client(r, id).status = 'failed';
      addUnique(r.failed, id);
      note(view, time, 'warn', `${id}: ${str(p.reason) ?? str(p.code) ?? 'failed'}`);
      break;
    }
    case 'round_closed': {
      const point = readRoundClosed(p, time);
      if (point === null) break;
      r.rounds = [...r.rounds.filter((x) => x.round !== point.round), point].sort((x, y) => x.round - y.round);
      r.round = Math.max(r.round, point.round);
      r.phase = 'closed';
      for (const loss of point.clientLoss) {
        const c = client(r, loss.client);
        c.lastLoss = loss.loss ?? c.lastLoss;
        c.examples = loss.examples ?? c.examples;
      }
      break;
    }
    case 'update_heatmap': {
      // Latest per module, in layout order of first arrival.
      for (const h of readHeatmaps(p)) {
        const i = r.heatmaps.findIndex((x) => x.module === h.module);
        if (i < 0) r.heatmaps.push(h);
        else if (h.round >= r.heatmaps[i].round) r.heatmaps[i] = h;
      }
      break;
    }
    case 'model_transfer':
      note(view, time, 'info', `${str(p.name) ?? str(p.clientId) ?? '?'}: base model transfer ${str(p.status) ?? ''}`);
      break;
    case 'round_evaluated': {
      const round = num(p.round);
      if (round === null) break;
      r.evals = [...r.evals.filter((e) => e.round !== round), { round, loss: num(p.evalLoss), accuracy: num(p.evalAccuracy) }].sort((x, y) => x.round - y.round);
      break;
    }
    case 'federation_done': {
      const reason = str(p.reason);
      r.phase = reason === 'stopped' ? 'stopped' : reason === 'failed' ? 'failed' : 'done';
      if (view.simulation === null) view.done = true;
      break;
    }
    case 'method_done':
      r.phase = r.phase === 'failed' || r.phase === 'stopped' ? r.phase : 'done';
      r.summary = { evalLoss: num(p.evalLoss), evalAccuracy: num(p.evalAccuracy), meanRelativeDeviation: num(p.meanRelativeDeviation), seconds: num(p.seconds) };
      break;
    case 'warning':
      note(view, time, 'warn', str(p.message) ?? 'warning');
      break;
    case 'error':
      r.phase = 'failed';
      note(view, time, 'error', str(p.message) ?? 'error');
      break;
    case 'client_rejected':
    case 'protocol_error':
      note(view, time, 'info', `${str(p.code) ?? 'rejected'}: ${str(p.message) ?? ''}`);
      break;
    default:
      break;
  }
  return view;
}

/** Applies a list of events to one federation of the state (for tests and replay). */
export function applyEvents(state: DashboardState, federationId: string, events: readonly DashboardEvent[]): DashboardState {
  return applyMessage(state, { type: 'events', federationId, events });
}

/** The state as JSON text for `setState` (the model is plain JSON already). */
export function serializeState(state: DashboardState): string {
  return JSON.stringify(state);
}

/**
 * A saved state (from `getState`, parsed or not) back as a DashboardState, or a fresh one when it is
 * missing, of another version or malformed. Checks the shape of everything the UI walks.
 */
export function restoreState(saved: unknown): DashboardState {
  let value: unknown = saved;
  if (typeof saved === 'string') {
    try {
      value = JSON.parse(saved);
    } catch {
      return createDashboardState();
    }
  }
  const s = fields(value);
  if (s === null || s.version !== DASHBOARD_STATE_VERSION || !Array.isArray(s.federations)) return createDashboardState();
  const federations = arr(s.federations).filter(isFederationView);
  const ui = fields(s.ui);
  const fresh = createDashboardState();
  return {
    version: DASHBOARD_STATE_VERSION,
    federations,
    selected: typeof s.selected === 'string' && federations.some((f) => f.id === s.selected) ? s.selected : (federations[0]?.id ?? null),
    ui: {
      run: str(ui?.run) ?? null,
      module: str(ui?.module) ?? null,
      round: num(ui?.round),
      factor: ui?.factor === 'a' ? 'a' : fresh.ui.factor,
    },
  };
}

function isFederationView(value: unknown): value is FederationView {
  const f = fields(value);
  return f !== null && typeof f.id === 'string' && typeof f.label === 'string' && Array.isArray(f.runs) && Array.isArray(f.notes)
    && f.runs.every((r) => {
      const x = fields(r);
      return x !== null && typeof x.key === 'string' && Array.isArray(x.rounds) && Array.isArray(x.clients) && Array.isArray(x.heatmaps) && Array.isArray(x.evals)
        && Array.isArray(x.sampled) && Array.isArray(x.reported) && Array.isArray(x.failed);
    });
}
