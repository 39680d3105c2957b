/**
 * `FedEx: Aggregate Adapters…` (pickers, then `fedex aggregate` in a child process with a
 * cancellable progress notification) and `FedEx: Export Adapter` (a finished federation through
 * `fedex export` the same way; any other folder: one of its PEFT adapters copied as is).
 */
import * as vscode from 'vscode';
import { basename, join } from 'node:path';
import { cp, stat } from 'node:fs/promises';
import { aggregateArgs, METHODS } from '../config/cliArgs.js';
import type { ExportKind } from '../../federation/export/exportFederation.js';
import { findAdapterFolders, isAdapterFolder, runStamp, summarizeAggregateReport } from '../adapterFiles.js';
import { exportFailureText, exportPlan, findFederationRun, removePartialExport, summarizeExportReport } from '../federationExport.js';
import type { FederationRun } from '../federationExport.js';
import { exitText } from '../process/federationRuns.js';
import type { Services } from '../services.js';
import type { FederationState } from '../state/federationState.js';
import { federationIdOf, pickFederation } from './pickFederation.js';
import { runWithProgress } from './progress.js';

const METHOD_DETAIL: Record<string, string> = {
  fedex: 'FedEx-LoRA: average A and B and fold the residual into the base weights (exact)',
  fedit: 'FedIT: plain averaging of A and B (inexact)',
  ffa: 'FFA-LoRA: average B only (A must be the shared frozen init)',
  flora: 'FLoRA: fold the whole mean update into the base (exact); the adapter written is a fresh start (B = 0)',
};

/** `FedEx: Aggregate Adapters…`. */
export async function aggregateAdapters(services: Services): Promise<void> {
  // fedex aggregate refuses fedsb (PEFT folders hold (A, B·R_i): ffa aggregates them exactly).
  const method = await vscode.window.showQuickPick(METHODS.filter((m) => m !== 'fedsb').map((m) => ({ label: m, detail: METHOD_DETAIL[m] })), { title: 'FedEx: Aggregate Adapters (1/4): method' });
  if (method === undefined) return;
  const defaultUri = vscode.workspace.workspaceFolders?.[0]?.uri;
  const base = await vscode.window.showOpenDialog({ title: 'FedEx: Aggregate Adapters (2/4): base model (folder with model.safetensors or a sharded model.safetensors.index.json, or a .safetensors file)', canSelectFiles: true,
    canSelectFolders: true, canSelectMany: false, defaultUri, openLabel: 'Use as Base Model' });
  if (base?.[0] === undefined) return;
  const adapters = await vscode.window.showOpenDialog({ title: 'FedEx: Aggregate Adapters (3/4): client adapter folders (PEFT, two or more)', canSelectFiles: false, canSelectFolders: true, canSelectMany: true, defaultUri,
    openLabel: 'Aggregate These' });
  if (adapters === undefined || adapters.length === 0) return;
  const notAdapters = (await Promise.all(adapters.map(async (a) => ((await isAdapterFolder(a.fsPath)) ? null : a.fsPath)))).filter((p): p is string => p !== null);
  if (notAdapters.length > 0) {
    void vscode.window.showErrorMessage(`FedEx: not a PEFT adapter folder (needs adapter_config.json and adapter_model.safetensors): ${notAdapters.join(', ')}`);
    return;
  }
  const parent = await vscode.window.showOpenDialog({ title: 'FedEx: Aggregate Adapters (4/4): where to write the result', canSelectFiles: false, canSelectFolders: true, canSelectMany: false, defaultUri, openLabel: 'Write Here' });
  if (parent?.[0] === undefined) return;
  const out = join(parent[0].fsPath, `fedex-aggregate-${method.label}-${runStamp()}`);
  const { device, aggregation, aggregationTrim } = services.settings();
  const args = aggregateArgs({ method: method.label, base: base[0].fsPath, adapters: adapters.map((a) => a.fsPath), out, device, aggregation, trim: aggregationTrim });
  const { exit, stdout } = await runWithProgress(services, { title: `FedEx: aggregating ${adapters.length} adapters (${method.label})`, tag: 'aggregate', args });
  if (exit.code === 0) {
    const summary = summarizeAggregateReport(stdout);
    services.log.info(`[aggregate] ${summary}`);
    void vscode.window.showInformationMessage(`FedEx: ${summary} Written to ${out}.`, 'Reveal').then((a) => a !== undefined && vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(out)));
  } else if (!exit.stopped) {
    void vscode.window.showErrorMessage(`FedEx: aggregation failed (${exitText(exit)}). See the FedEx log for the reason.`, 'Show Log').then((a) => a !== undefined && services.output.show(true));
  }
}

/** What `FedEx: Export Adapter…` offers to write for a federation (`fedex export --as`). */
const EXPORT_CHOICES: readonly (vscode.QuickPickItem & { readonly as: ExportKind })[] = [
  { as: 'adapter', label: 'Adapter on the original base', description: 'recommended',
    detail: "One PEFT LoRA adapter whose B·A is the federation's whole update (every folded residual plus the global adapter); load it on the original base with PeftModel.from_pretrained." },
  { as: 'merged', label: 'Merged model', detail: "The original base with the federation's update added: a Hugging Face model folder in the base's dtype and sharding." },
  { as: 'both', label: 'Both', detail: 'The adapter (adapter/) and the merged model (model/) side by side.' },
];

/**
 * `FedEx: Export Adapter`: pick a finished run (or a folder). A federation run (hosted or simulated)
 * is exported by `fedex export` (its global adapter alone is not the result); any other folder (e.g.
 * a `fedex train` output) has one of its PEFT adapters copied as is.
 */
export async function exportAdapter(services: Services, arg?: unknown): Promise<void> {
  const finished = (f: { outDir: string | null; live: boolean }): boolean => f.outDir !== null && !f.live;
  let root: string | undefined;
  let picked: FederationState | undefined;
  if (federationIdOf(arg) !== undefined || services.store.list().some(finished)) {
    picked = await pickFederation(services.store, arg, finished, { title: 'FedEx: Export Adapter', none: 'no finished run with an output folder.' });
    root = picked?.outDir ?? undefined;
  } else {
    const folder = await vscode.window.showOpenDialog({ title: 'FedEx: Export Adapter: a federation run folder (fedex host --out, fedex simulate --out) or a folder with PEFT adapters', canSelectFiles: false, canSelectFolders: true,
      canSelectMany: false, defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri });
    root = folder?.[0]?.fsPath;
  }
  if (root === undefined) return;
  const run = await findFederationRun(root);
  if (run !== null) {
    await exportFederationRun(services, run, picked?.label ?? basename(root));
    return;
  }
  if (picked !== undefined && (picked.kind === 'host' || picked.kind === 'simulation')) {
    void vscode.window.showWarningMessage(`FedEx: ${picked.label} left no federation state in ${root} (no state.json, no runs/<method>/state.json): there is nothing to export.`);
    return;
  }
  await copyAdapter(services, root);
}

/** A federation run through `fedex export --json`: which run (simulation), what to write, where; then the CLI under a progress notification. */
async function exportFederationRun(services: Services, run: FederationRun, label: string): Promise<void> {
  const askMethod = run.kind === 'simulation' && run.methods.length > 1;
  const steps = askMethod ? 3 : 2;
  let method: string | undefined;
  if (askMethod) {
    const m = await vscode.window.showQuickPick(run.methods.map((name) => ({ label: name, description: `runs/${name}`, detail: METHOD_DETAIL[name], name })), { title: `FedEx: Export Adapter (1/${steps}): which run of ${label}`,
      placeHolder: 'The simulation ran several methods: export which one' });
    if (m === undefined) return;
    method = m.name;
  }
  const what = await vscode.window.showQuickPick(EXPORT_CHOICES, { title: `FedEx: Export Adapter (${steps - 1}/${steps}): what to write`, placeHolder: `Export ${label}${method !== undefined ? ` (${method})` : ''} as` });
  if (what === undefined) return;
  const dest = await vscode.window.showOpenDialog({ title: `FedEx: Export Adapter (${steps}/${steps}): where to write the export (a new fedex-export-… folder)`, canSelectFiles: false, canSelectFolders: true, canSelectMany: false,
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri, openLabel: 'Export Here' });
  if (dest?.[0] === undefined) return;
  const plan = exportPlan(run, { as: what.as, parent: dest[0].fsPath, device: services.settings().device, stamp: runStamp(), ...(method !== undefined ? { method } : {}) });
  const name = `${label}${plan.method !== null ? ` (${plan.method})` : ''}`;
  const result = await runWithProgress(services, { title: `FedEx: exporting ${name} as ${what.label.toLowerCase()}`, tag: 'export', args: plan.args });
  if (result.exit.code === 0) {
    const summary = summarizeExportReport(result.stdout);
    if (summary === null) {
      services.log.error(`[export] the report on stdout could not be read: ${result.stdout.slice(0, 500)}`);
      void vscode.window.showErrorMessage(`FedEx: fedex export finished but its report could not be read; see ${plan.out} and the FedEx log.`, 'Show Log').then((a) => a !== undefined && services.output.show(true));
      return;
    }
    services.log.info(`[export] ${summary.text}`);
    void vscode.window.showInformationMessage(`FedEx: ${summary.text}`, 'Reveal').then((a) => a !== undefined && vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(summary.reveal)));
  } else if (result.exit.stopped) {
    const removed = await removePartialExport(plan.out);
    const written = await stat(plan.out).then(() => true, () => false);
    void vscode.window.showInformationMessage(written
      ? `FedEx: export of ${name} cancelled after it had finished: it is in ${plan.out}.`
      : `FedEx: export of ${name} cancelled; nothing was written${removed > 0 ? ' (its partial output was removed)' : ''}.`);
  } else {
    const why = exportFailureText(result);
    services.log.error(`[export] ${name}: ${why}`);
    void vscode.window.showErrorMessage(`FedEx: export of ${name} failed: ${why}`, 'Show Log').then((a) => a !== undefined && services.output.show(true));
  }
}

/** A folder that is not a federation run: pick one of its PEFT adapters and copy it as is. */
async function copyAdapter(services: Services, dir: string): Promise<void> {
  const found = await findAdapterFolders(dir);
  if (found.length === 0) {
    void vscode.window.showWarningMessage(
      `FedEx: ${dir} is not a federation run (fedex host --out or fedex simulate --out) and has no PEFT adapter folder under it. \`fedex train\`, \`fedex simulate --save-adapters\` and \`fedex aggregate\` write them.`,
    );
    return;
  }
  const choice = found.length === 1
    ? { path: found[0] }
    : await vscode.window.showQuickPick(found.map((p) => ({ label: p.slice(dir.length + 1) || basename(p), path: p })), { title: 'FedEx: Export Adapter (copy as is)', placeHolder: 'Adapter to copy' });
  if (choice === undefined) return;
  const dest = await vscode.window.showOpenDialog({ title: 'FedEx: Export Adapter: destination folder (the adapter is copied as is)', canSelectFiles: false, canSelectFolders: true, canSelectMany: false, openLabel: 'Copy Here' });
  if (dest?.[0] === undefined) return;
  const target = join(dest[0].fsPath, `${basename(choice.path)}-${runStamp()}`);
  try {
    if (await stat(target).then(() => true, () => false)) throw new Error(`${target} already exists`);
    await cp(choice.path, target, { recursive: true, errorOnExist: true, force: false });
    services.log.info(`copied the adapter ${choice.path} as is → ${target}`);
    void vscode.window.showInformationMessage(`FedEx: adapter copied as is to ${target} (${dir} is not a federation run, so nothing was folded in; loads with PEFT's PeftModel.from_pretrained).`, 'Reveal').then((a) =>
      a !== undefined && vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(target))
    );
  } catch (err) {
    services.log.error(`copying the adapter to ${target} failed: ${(err as Error).message}`);
    void vscode.window.showErrorMessage(`FedEx: could not copy the adapter: ${(err as Error).message}`);
  }
}
