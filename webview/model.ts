/**
 * The dashboard model: the federations as the extension folded them (FederationState, the one
 * state the sidebar shows too; src/extension/state/federationState.ts) and the user's choices.
 * Plain JSON, so that it survives `acquireVsCodeApi().setState` and a VS Code reload.
 */
import type { FederationState } from '../src/extension/state/federationState.js';

/** Version of the saved state; a saved state of another version is dropped. */
export const DASHBOARD_STATE_VERSION = 2;

/** What the user chose (kept across reloads). */
export interface UiChoices {
  /** Run key of the selected federation to detail (null: the active one). */
  run: string | null;
  /** Module of the heatmap (null: the first with a heatmap). */
  module: string | null;
  /** Round of the per-round charts (null: the latest). */
  round: number | null;
  /** Which factor the client-diff chart shows. */
  factor: 'a' | 'b';
}

/** A choice the user made in the toolbar or a section. */
export type UiChoice =
  | { readonly kind: 'federation'; readonly value: string }
  | { readonly kind: 'run'; readonly value: string }
  | { readonly kind: 'round'; readonly value: number | null }
  | { readonly kind: 'module'; readonly value: string }
  | { readonly kind: 'factor'; readonly value: 'a' | 'b' }
  | { readonly kind: 'export' };

/** The whole dashboard model. */
export interface DashboardState {
  readonly version: typeof DASHBOARD_STATE_VERSION;
  /** In the extension's order, then those kept from a saved state that the extension no longer knows. */
  federations: FederationState[];
  /** Ids of the federations kept from a saved state but unknown to the extension now. */
  restored: string[];
  selected: string | null;
  ui: UiChoices;
}

/** An empty dashboard. */
export function createDashboardState(): DashboardState {
  return { version: DASHBOARD_STATE_VERSION, federations: [], restored: [], selected: null, ui: { run: null, module: null, round: null, factor: 'b' } };
}
