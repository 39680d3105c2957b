/**
 * The dashboard's reducer: extension messages and the user's choices → the dashboard model
 * (model.ts). No DOM. A federation's state comes from the extension (`init`, `federation`) and moves
 * on with its `events`, folded by the same `reduceFederation` the extension folds them with, so the
 * dashboard shows the state the sidebar shows. The functions update the model they are given in
 * place and return it (it is owned by the webview; the federation states in it are immutable).
 */
import type { DashboardEvent, ExtensionToWebviewMessage } from '../src/extension/dashboard/messages.js';
import { initialFederation, reduceFederation, type FederationState } from '../src/extension/state/federationState.js';
import { fields, num, str, strings } from '../src/extension/state/read.js';
import { isFederationState } from '../src/extension/state/stateGuard.js';
import { createDashboardState, DASHBOARD_STATE_VERSION, type DashboardState, type UiChoice } from './model.js';

/** Applies one message from the extension (a `reply` is the request client's, requests.ts: it leaves the model alone). */
export function applyMessage(state: DashboardState, message: ExtensionToWebviewMessage): DashboardState {
  switch (message.type) {
    case 'init': {
      // The extension's states are authoritative; federations it no longer knows stay, marked restored.
      const known = new Set(message.federations.map((f) => f.id));
      const kept = state.federations.filter((f) => !known.has(f.id)).map((f) => (f.live ? { ...f, live: false } : f));
      state.federations = [...message.federations, ...kept];
      state.restored = kept.map((f) => f.id);
      state.selected = pickSelected(state, message.selected ?? state.selected);
      return state;
    }
    case 'federation':
      putFederation(state, message.federation);
      state.selected = pickSelected(state, state.selected);
      return state;
    case 'events': {
      const i = federationIndex(state, message.federationId);
      state.federations[i] = message.events.reduce(reduceFederation, state.federations[i]);
      state.selected ??= message.federationId;
      return state;
    }
    case 'select':
      if (state.federations.some((f) => f.id === message.federationId)) {
        if (state.selected !== message.federationId) state.ui = { ...state.ui, run: null, module: null, round: null };
        state.selected = message.federationId;
      }
      return state;
    case 'reply':
      return state;
  }
}

/** Applies a choice the user made in the toolbar or a section (`export` is a request, not a choice: main.ts). */
export function applyChoice(state: DashboardState, choice: UiChoice): DashboardState {
  switch (choice.kind) {
    case 'federation':
      if (choice.value !== state.selected) state.ui = { ...state.ui, run: null, module: null, round: null };
      state.selected = choice.value;
      break;
    case 'run':
      state.ui.run = choice.value;
      state.ui.round = null;
      break;
    case 'round':
      state.ui.round = choice.value;
      break;
    case 'module':
      // Every module's latest heatmap is in the state: the heatmap panel switches to it, nothing to ask.
      state.ui.module = choice.value;
      break;
    case 'factor':
      state.ui.factor = choice.value;
      break;
    case 'export':
      break;
  }
  return state;
}

function pickSelected(state: DashboardState, wanted: string | null): string | null {
  if (wanted !== null && state.federations.some((f) => f.id === wanted)) return wanted;
  return state.federations[0]?.id ?? null;
}

/** Puts a federation's state in place of the one of its id (new ones before the restored ones). */
function putFederation(state: DashboardState, federation: FederationState): void {
  state.restored = state.restored.filter((id) => id !== federation.id);
  const i = state.federations.findIndex((f) => f.id === federation.id);
  if (i >= 0) {
    state.federations[i] = federation;
    return;
  }
  const firstRestored = state.federations.findIndex((f) => state.restored.includes(f.id));
  state.federations.splice(firstRestored < 0 ? state.federations.length : firstRestored, 0, federation);
}

/** The index of federation `id`, added (labelled by its id) when events arrive before its state. */
function federationIndex(state: DashboardState, id: string): number {
  if (!state.federations.some((f) => f.id === id)) putFederation(state, initialFederation({ id, label: id, kind: 'host', live: true }));
  return state.federations.findIndex((f) => f.id === id);
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
 * missing, of another version or malformed. Malformed federations are dropped.
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
  const federations = s.federations.filter(isFederationState);
  const ui = fields(s.ui);
  const fresh = createDashboardState();
  return {
    version: DASHBOARD_STATE_VERSION,
    federations,
    restored: strings(s.restored).filter((id) => federations.some((f) => f.id === id)),
    selected: typeof s.selected === 'string' && federations.some((f) => f.id === s.selected) ? s.selected : (federations[0]?.id ?? null),
    ui: {
      run: str(ui?.run) ?? null,
      module: str(ui?.module) ?? null,
      round: num(ui?.round),
      factor: ui?.factor === 'a' ? 'a' : fresh.ui.factor,
    },
  };
}
