/**
 * A cancellable progress notification that follows one federation in the store until its process
 * exits; cancelling stops the process (SIGTERM, then SIGKILL).
 */
import * as vscode from 'vscode';
import type { Services } from '../services.js';
import type { FederationState } from '../state/federationState.js';
import { federationFraction } from '../state/treeModel.js';

function progressMessage(s: FederationState): string {
  const method = s.kind === 'simulation' && s.method !== null ? `${s.method}: ` : '';
  return `${method}round ${s.round}${s.totalRounds !== null ? `/${s.totalRounds}` : ''} · ${s.phase}`;
}

/** Shows progress for federation `id` until it ends; resolves with its final state. */
export function followWithProgress(services: Services, id: string, title: string): Thenable<FederationState | undefined> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) =>
    new Promise<FederationState | undefined>((resolve) => {
      let reported = 0;
      const update = (): void => {
        const s = services.store.get(id);
        if (s === undefined) return;
        const fraction = federationFraction(s);
        progress.report({ message: progressMessage(s), increment: Math.max(0, (fraction - reported) * 100) });
        reported = Math.max(reported, fraction);
        if (!s.live) finish();
      };
      const sub = services.store.onDidChange((c) => c.id === id && update());
      const cancel = token.onCancellationRequested(() => {
        services.log.info(`cancelled by the user: stopping ${services.store.get(id)?.label ?? id}`);
        void services.runs.stop(id);
      });
      const finish = (): void => {
        sub.dispose();
        cancel.dispose();
        resolve(services.store.get(id));
      };
      update();
    }));
}
