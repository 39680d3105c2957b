/**
 * The status-bar item "FedEx round n/N · phase" of the active federation; a click opens the
 * dashboard (or, while a round waits for it, runs FedEx: Start Round).
 */
import * as vscode from 'vscode';
import type { FederationStore } from '../state/federationStore.js';
import { statusCommand, statusText, statusTooltip } from '../state/treeModel.js';

/** Creates the item and keeps it in sync with the store. */
export function createStatusBar(store: FederationStore): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('fedex.status', vscode.StatusBarAlignment.Left, 50);
  item.name = 'FedEx';
  const update = (): void => {
    const active = store.active();
    item.text = `$(organization) ${statusText(active)}`;
    item.command = statusCommand(active);
    item.tooltip = statusTooltip(active);
    item.backgroundColor = active?.phase === 'failed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  };
  update();
  item.show();
  const sub = store.onDidChange(update);
  return vscode.Disposable.from(item, sub);
}
