/** Resolves the federation a command acts on: the tree item it was invoked on, an id, or a quick pick. */
import * as vscode from 'vscode';
import type { FederationState } from '../state/federationState.js';
import type { FederationStore } from '../state/federationStore.js';
import { roundText } from '../state/treeModel.js';

/** The federation id in a command argument (a tree node from a context menu, or a federation id), if any. */
export function federationIdOf(arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  if (typeof arg === 'object' && arg !== null && typeof (arg as { federationId?: unknown }).federationId === 'string') return (arg as { federationId: string }).federationId;
  return undefined;
}

/**
 * The federation to act on among those `accept` allows: the one named by `arg`, the only candidate,
 * or the user's pick. Undefined (after saying why) when there is none or the pick was dismissed.
 */
export async function pickFederation(store: FederationStore, arg: unknown, accept: (s: FederationState) => boolean, what: { title: string; none: string }): Promise<FederationState | undefined> {
  const id = federationIdOf(arg);
  if (id !== undefined) {
    const s = store.get(id);
    if (s !== undefined && accept(s)) return s;
  }
  const candidates = store.list().filter(accept);
  if (candidates.length === 0) {
    void vscode.window.showInformationMessage(`FedEx: ${what.none}`);
    return undefined;
  }
  if (candidates.length === 1) return candidates[0];
  const picked = await vscode.window.showQuickPick(
    candidates.map((s) => ({ label: s.label, description: `${s.phase} · ${roundText(s)}`, detail: s.url ?? s.outDir ?? undefined, state: s })),
    { title: what.title, placeHolder: 'Pick a federation' },
  );
  return picked?.state;
}
