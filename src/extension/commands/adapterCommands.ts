/**
 * `FedEx: Aggregate Adapters…` (pickers, then `fedex aggregate` in a child process with a
 * cancellable progress notification) and `FedEx: Export Adapter` (copies a PEFT adapter folder a
 * run produced to a folder the user picks).
 */
import * as vscode from 'vscode';
import { basename, join } from 'node:path';
import { cp, stat } from 'node:fs/promises';
import { aggregateArgs, METHODS } from '../config/cliArgs.js';
import { findAdapterFolders, isAdapterFolder, runStamp, summarizeAggregateReport } from '../adapterFiles.js';
import { startCliProcess, describeCommand } from '../process/cliProcess.js';
import { exitText } from '../process/federationRuns.js';
import type { Services } from '../services.js';
import { federationIdOf, pickFederation } from './pickFederation.js';

const METHOD_DETAIL: Record<string, string> = {
  fedex: 'FedEx-LoRA: average A and B and fold the residual into the base weights (exact)',
  fedit: 'FedIT: plain averaging of A and B (inexact)',
  ffa: 'FFA-LoRA: average B only (A must be the shared frozen init)',
};

/** `FedEx: Aggregate Adapters…`. */
export async function aggregateAdapters(services: Services): Promise<void> {
  const method = await vscode.window.showQuickPick(METHODS.map((m) => ({ label: m, detail: METHOD_DETAIL[m] })), { title: 'FedEx: Aggregate Adapters (1/4): method' });
  if (method === undefined) return;
  const defaultUri = vscode.workspace.workspaceFolders?.[0]?.uri;
  const base = await vscode.window.showOpenDialog({ title: 'FedEx: Aggregate Adapters (2/4): base model (folder with model.safetensors or a sharded model.safetensors.index.json, or a .safetensors file)', canSelectFiles: true, canSelectFolders: true, canSelectMany: false, defaultUri, openLabel: 'Use as Base Model' });
  if (base?.[0] === undefined) return;
  const adapters = await vscode.window.showOpenDialog({ title: 'FedEx: Aggregate Adapters (3/4): client adapter folders (PEFT, two or more)', canSelectFiles: false, canSelectFolders: true, canSelectMany: true, defaultUri, openLabel: 'Aggregate These' });
  if (adapters === undefined || adapters.length === 0) return;
  const notAdapters = (await Promise.all(adapters.map(async (a) => ((await isAdapterFolder(a.fsPath)) ? null : a.fsPath)))).filter((p): p is string => p !== null);
  if (notAdapters.length > 0) {
    void vscode.window.showErrorMessage(`FedEx: not a PEFT adapter folder (needs adapter_config.json and adapter_model.safetensors): ${notAdapters.join(', ')}`);
    return;
  }
  const parent = await vscode.window.showOpenDialog({ title: 'FedEx: Aggregate Adapters (4/4): where to write the result', canSelectFiles: false, canSelectFolders: true, canSelectMany: false, defaultUri, openLabel: 'Write Here' });
  if (parent?.[0] === undefined) return;
  const out = join(parent[0].fsPath, `fedex-aggregate-${method.label}-${runStamp()}`);
  const args = aggregateArgs({ method: method.label, base: base[0].fsPath, adapters: adapters.map((a) => a.fsPath), out, device: services.settings().device });
  services.log.info(`[aggregate] fedex ${describeCommand(args)}`);
  let stdout = '';
  const exit = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `FedEx: aggregating ${adapters.length} adapters (${method.label})`, cancellable: true }, (_progress, token) => {
    const proc = startCliProcess(
      { nodePath: process.execPath, cliPath: vscode.Uri.joinPath(services.context.extensionUri, 'dist', 'cli.cjs').fsPath, args, cwd: services.cwd(), stdout: 'raw' },
      { onEvent: () => undefined, onStdout: (t) => (stdout += t), onStderr: (l) => services.log.info(`[aggregate] ${l}`) },
    );
    token.onCancellationRequested(() => void proc.stop());
    return proc.exited;
  });
  services.log.info(`[aggregate] ${exitText(exit)}`);
  if (exit.code === 0) {
    const summary = summarizeAggregateReport(stdout);
    services.log.info(`[aggregate] ${summary}`);
    void vscode.window.showInformationMessage(`FedEx: ${summary} Written to ${out}.`, 'Reveal').then((a) => a !== undefined && vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(out)));
  } else if (!exit.stopped) {
    void vscode.window.showErrorMessage(`FedEx: aggregation failed (${exitText(exit)}). See the FedEx log for the reason.`, 'Show Log').then((a) => a !== undefined && services.output.show(true));
  }
}

/** `FedEx: Export Adapter`: pick a run (or a folder), pick one of its PEFT adapters, copy it out. */
export async function exportAdapter(services: Services, arg?: unknown): Promise<void> {
  const finished = (f: { outDir: string | null; live: boolean }): boolean => f.outDir !== null && !f.live;
  let root: string | undefined;
  if (federationIdOf(arg) !== undefined || services.store.list().some(finished)) {
    const s = await pickFederation(services.store, arg, finished, { title: 'FedEx: Export Adapter', none: 'no finished run with an output folder.' });
    root = s?.outDir ?? undefined;
  } else {
    const picked = await vscode.window.showOpenDialog({ title: 'FedEx: Export Adapter: folder to search for PEFT adapters', canSelectFiles: false, canSelectFolders: true, canSelectMany: false });
    root = picked?.[0]?.fsPath;
  }
  if (root === undefined) return;
  const dir = root;
  const found = await findAdapterFolders(dir);
  if (found.length === 0) {
    void vscode.window.showWarningMessage(`FedEx: no PEFT adapter folder under ${dir}. \`fedex simulate --save-adapters\` and \`fedex aggregate\` write them.`);
    return;
  }
  const choice = found.length === 1 ? { path: found[0] } : await vscode.window.showQuickPick(found.map((p) => ({ label: p.slice(dir.length + 1) || basename(p), path: p })), { title: 'FedEx: Export Adapter', placeHolder: 'Adapter to export' });
  if (choice === undefined) return;
  const dest = await vscode.window.showOpenDialog({ title: 'FedEx: Export Adapter: destination folder', canSelectFiles: false, canSelectFolders: true, canSelectMany: false, openLabel: 'Export Here' });
  if (dest?.[0] === undefined) return;
  const target = join(dest[0].fsPath, `${basename(choice.path)}-${runStamp()}`);
  try {
    if (await stat(target).then(() => true, () => false)) throw new Error(`${target} already exists`);
    await cp(choice.path, target, { recursive: true, errorOnExist: true, force: false });
    services.log.info(`exported ${choice.path} → ${target}`);
    void vscode.window.showInformationMessage(`FedEx: adapter exported to ${target} (loads with PEFT's PeftModel.from_pretrained).`, 'Reveal').then((a) => a !== undefined && vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(target)));
  } catch (err) {
    services.log.error(`export to ${target} failed: ${(err as Error).message}`);
    void vscode.window.showErrorMessage(`FedEx: could not export the adapter: ${(err as Error).message}`);
  }
}
