/**
 * The dashboard's `exportReport` request: a federation's report saved where the user chooses — the
 * CLI's report.html / report.json when it wrote one (`fedex simulate`), else (JSON only) the
 * federation's folded state and its event history. The save dialog is passed in (vscode's in the
 * panel), so this runs and is tested without vscode.
 */
import { copyFile, writeFile } from 'node:fs/promises';
import type { FederationStore } from '../state/federationStore.js';
import type { DashboardRequestMap, ReportFormat } from './messages.js';
import { RequestFailure } from './requests.js';

/** Asks where to save (a file path), or undefined when the user cancels. */
export type ChooseTarget = (o: { readonly title: string; readonly format: ReportFormat; readonly defaultName: string }) => Promise<string | undefined>;

/** Saves the report of `params.federationId`; `path` is null when the user cancelled. */
export async function exportReport(
  store: Pick<FederationStore, 'get' | 'events'>,
  params: DashboardRequestMap['exportReport']['params'],
  chooseTarget: ChooseTarget,
): Promise<DashboardRequestMap['exportReport']['result']> {
  const state = store.get(params.federationId);
  if (state === undefined) throw new RequestFailure('E_UNKNOWN_FEDERATION', `The extension no longer knows federation ${params.federationId}.`);
  const source = params.format === 'html' ? state.reportHtml : state.reportJson;
  if (params.format === 'html' && source === null) {
    throw new RequestFailure('E_NO_REPORT', `${state.label} has no HTML report (only fedex simulate writes one); export it as JSON instead.`);
  }
  const path = await chooseTarget({ title: `Export the report of ${state.label}`, format: params.format, defaultName: `fedex-report.${params.format}` });
  if (path === undefined) return { path: null };
  try {
    if (source !== null) await copyFile(source, path);
    else await writeFile(path, `${JSON.stringify({ federation: state, events: store.events(params.federationId) }, null, 1)}\n`);
  } catch (err) {
    throw new RequestFailure('E_WRITE_FAILED', `Could not write the report to ${path}: ${(err as Error).message}`);
  }
  return { path };
}
