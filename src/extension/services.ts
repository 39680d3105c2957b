/**
 * The extension's one container: everything the commands, views and the dashboard share, built once
 * in `activate()` and passed to them (no globals).
 */
import * as vscode from 'vscode';
import { join } from 'node:path';
import { readSettings } from './config/cliArgs.js';
import type { FedexSettings } from './config/cliArgs.js';
import { runStamp } from './adapterFiles.js';
import { FederationRuns } from './process/federationRuns.js';
import type { Log } from './process/federationRuns.js';
import { FederationStore } from './state/federationStore.js';
import { TokenStore } from './tokenStore.js';

/** What commands and views get. */
export interface Services {
  readonly context: vscode.ExtensionContext;
  readonly store: FederationStore;
  readonly runs: FederationRuns;
  readonly log: Log;
  readonly output: vscode.LogOutputChannel;
  readonly tokens: TokenStore;
  /** The current `fedex.*` settings (problems are logged and shown once per change). */
  settings(): FedexSettings;
  /** A new output folder for a run: `<workspace>/.fedex/runs/<prefix>-<stamp>` (or in global storage without a workspace). */
  newRunDir(prefix: string): string;
  /** Working directory of CLI children (relative model/data paths resolve against it). */
  cwd(): string | undefined;
  /** Opens (or reveals) the dashboard, focused on a federation. */
  openDashboard(federationId?: string): void;
}

/** Builds the container; `openDashboard` is wired in after the dashboard controller exists. */
export function createServices(context: vscode.ExtensionContext, openDashboard: (id?: string) => void): Services {
  const output = vscode.window.createOutputChannel('FedEx', { log: true });
  context.subscriptions.push(output);
  const log: Log = { info: (m) => output.info(m), warn: (m) => output.warn(m), error: (m) => output.error(m) };
  const store = new FederationStore();
  const runs = new FederationRuns(store, { nodePath: process.execPath, cliPath: vscode.Uri.joinPath(context.extensionUri, 'dist', 'cli.cjs').fsPath }, log);
  context.subscriptions.push({ dispose: () => void runs.stopAll(2000) });
  let reported = '';
  const workspaceDir = (): string | undefined => vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath;
  return {
    context,
    store,
    runs,
    log,
    output,
    tokens: new TokenStore(context.secrets),
    settings: () => {
      const config = vscode.workspace.getConfiguration('fedex');
      const { settings, problems } = readSettings((key) => config.get(key));
      const text = problems.join('; ');
      if (text !== '' && text !== reported) {
        problems.forEach((p) => log.warn(`settings: ${p}`));
        void vscode.window.showWarningMessage(`FedEx: ${problems.length} setting(s) are invalid and were replaced by defaults: ${problems[0]}`, 'Open Settings')
          .then((a) => a !== undefined && vscode.commands.executeCommand('workbench.action.openSettings', 'fedex'));
      }
      reported = text;
      return settings;
    },
    newRunDir: (prefix) => {
      const root = workspaceDir();
      const base = root !== undefined ? join(root, '.fedex', 'runs') : join(context.globalStorageUri.fsPath, 'runs');
      return join(base, `${prefix}-${runStamp()}`);
    },
    cwd: workspaceDir,
    openDashboard,
  };
}
