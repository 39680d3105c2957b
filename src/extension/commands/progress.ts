/**
 * Cancellable progress notifications: one that follows a federation in the store until its process
 * exits, one that runs a one-shot `fedex` command (aggregate, export) to its end. Cancelling stops
 * the process (SIGTERM, then SIGKILL).
 */
import * as vscode from 'vscode';
import { describeCommand, runCliToEnd } from '../process/cliProcess.js';
import type { CliResult } from '../process/cliProcess.js';
import { exitText } from '../process/federationRuns.js';
import type { Services } from '../services.js';
import type { FederationState } from '../state/federationState.js';
import { federationFraction, roundText } from '../state/treeModel.js';

function progressMessage(s: FederationState): string {
  const method = s.kind === 'simulation' && s.method !== null ? `${s.method}: ` : '';
  return `${method}${roundText(s)} · ${s.phase}`;
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

/**
 * Runs `fedex <args>` (a one-shot command with a `--json` report on stdout) from where the
 * federations' CLI runs, under a cancellable progress notification; its command line, stderr lines
 * and exit go to the log as `[tag] …`, and the latest stderr line shows in the notification.
 */
export function runWithProgress(services: Services, o: { title: string; tag: string; args: readonly string[] }): Thenable<CliResult> {
  const { nodePath, cliPath, killGraceMs, spawn } = services.runs.cli;
  services.log.info(`[${o.tag}] fedex ${describeCommand(o.args)}`);
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: o.title, cancellable: true }, async (progress, token) => {
    const abort = new AbortController();
    const cancel = token.onCancellationRequested(() => {
      services.log.info(`[${o.tag}] cancelled by the user`);
      abort.abort();
    });
    try {
      const result = await runCliToEnd({ nodePath, cliPath, killGraceMs, spawn, args: o.args, cwd: services.cwd(), signal: abort.signal }, (line) => {
        services.log.info(`[${o.tag}] ${line}`);
        if (line.trim() !== '') progress.report({ message: line.length > 120 ? `${line.slice(0, 119)}…` : line });
      });
      services.log.info(`[${o.tag}] ${exitText(result.exit)}`);
      return result;
    } finally {
      cancel.dispose();
    }
  });
}
