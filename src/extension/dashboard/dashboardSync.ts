/**
 * What the extension posts to the dashboard, decided from the store alone (no vscode here; the
 * panel in panel.ts only posts it): `init` carries every federation's folded state, and after it
 * each store change becomes one message — the new events (the webview folds them with the same
 * `reduceFederation`), or the whole state when it changed without an event.
 */
import type { FederationState } from '../state/federationState.js';
import type { FederationStore, StoreChange } from '../state/federationStore.js';
import { DASHBOARD_PROTOCOL_VERSION, type DashboardThemeKind, type ExtensionToWebviewMap, type ExtensionToWebviewMessage } from './messages.js';

/** True for a federation the dashboard shows (a remote one not joined has no data). */
export function onDashboard(s: FederationState): boolean {
  return s.kind !== 'remote';
}

/** The answer to `ready`: the dashboard's federations as folded so far, and the one to focus (when the dashboard has it). */
export function initMessage(states: readonly FederationState[], select: string | null, theme: DashboardThemeKind): { readonly type: 'init' } & ExtensionToWebviewMap['init'] {
  const federations = states.filter(onDashboard);
  const selected = select !== null && federations.some((f) => f.id === select) ? select : null;
  return { type: 'init', version: DASHBOARD_PROTOCOL_VERSION, federations, selected, theme };
}

/** The message that brings a dashboard up to date after `change`, or null when it shows nothing of it. */
export function changeMessage(store: Pick<FederationStore, 'get'>, change: StoreChange): ExtensionToWebviewMessage | null {
  const state = store.get(change.id);
  if (state === undefined || !onDashboard(state)) return null;
  if (change.events !== undefined && change.events.length > 0) return { type: 'events', federationId: change.id, events: change.events };
  return { type: 'federation', federation: state };
}
