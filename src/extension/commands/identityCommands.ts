/**
 * Per-client identity from the editor (docs/security.md): `FedEx: Create Identity Key…` makes a
 * client's key pair with `fedex keygen` and offers to use it for joining (fedex.joinIdentity);
 * `FedEx: Manage Enrolled Clients…` enrolls a client's public key, revokes a client, or lists them,
 * in the registry a hosted federation reads (fedex.hostClients), through `fedex clients`. A hosted
 * federation applies changes within a second.
 */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import * as vscode from 'vscode';
import type { EnrolledClient } from '../../federation/coordinator/enrollment.js';
import { clientsArgs, keygenArgs } from '../config/cliArgs.js';
import { isClientId } from '../../federation/shared/identityFiles.js';
import type { CliResult } from '../process/cliProcess.js';
import type { Services } from '../services.js';
import { runWithProgress } from './progress.js';

/** The last line the CLI printed on stderr (its error), without the `fedex …:` prefix repeated. */
function failure(result: CliResult): string {
  return result.stderr.filter((l) => l.trim() !== '').at(-1) ?? `exit ${String(result.exit.code)}`;
}

/** Where relative paths and new files go: the workspace folder, else the home folder. */
function baseDir(services: Services): string {
  return services.cwd() ?? homedir();
}

/** The registry of `fedex.hostClients` as an absolute path, asking for one (and saving it) when unset. */
async function registryPath(services: Services): Promise<string | undefined> {
  const configured = services.settings().hostClients;
  const resolveIn = (p: string): string => (isAbsolute(p) ? p : join(baseDir(services), p));
  if (configured !== '') return resolveIn(configured);
  const picked = await vscode.window.showSaveDialog({
    title: 'FedEx: where to keep the registry of enrolled clients (fedex.hostClients)',
    defaultUri: vscode.Uri.file(join(baseDir(services), 'clients.json')),
    filters: { 'Client registry': ['json'] },
    saveLabel: 'Use This Registry',
  });
  if (picked === undefined) return undefined;
  await vscode.workspace.getConfiguration('fedex').update('hostClients', picked.fsPath, vscode.ConfigurationTarget.Workspace);
  return picked.fsPath;
}

async function run(services: Services, title: string, args: readonly string[]): Promise<CliResult | undefined> {
  const result = await runWithProgress(services, { title, tag: 'clients', args });
  if (result.exit.code === 0) return result;
  if (!result.exit.stopped) void vscode.window.showErrorMessage(`FedEx: ${failure(result)}`, 'Show Log').then((a) => a !== undefined && services.output.show(true));
  return undefined;
}

/** `FedEx: Manage Enrolled Clients…`. */
export async function manageClients(services: Services): Promise<void> {
  const registry = await registryPath(services);
  if (registry === undefined) return;
  const action = await vscode.window.showQuickPick([
    { label: '$(add) Enroll a client…', detail: "Pick the client's public key file (<id>.pub from fedex keygen)", id: 'add' as const },
    { label: '$(circle-slash) Revoke a client…', detail: 'It is disconnected at once and refused from then on', id: 'revoke' as const },
    { label: '$(list-flat) List enrolled clients', id: 'list' as const },
  ], { title: `FedEx: Manage Enrolled Clients (${registry})` });
  if (action === undefined) return;
  if (action.id === 'add') {
    const pub = await vscode.window.showOpenDialog({ title: "FedEx: the client's public key file (.pub)", canSelectMany: false, filters: { 'Public key': ['pub'] }, openLabel: 'Enroll' });
    if (pub?.[0] === undefined) return;
    const done = await run(services, 'FedEx: enrolling the client', clientsArgs(registry, { add: pub[0].fsPath }));
    if (done !== undefined) void vscode.window.showInformationMessage(`FedEx: ${done.stdout.trim()}`);
    return;
  }
  const listed = await run(services, 'FedEx: reading the enrolled clients', clientsArgs(registry, 'list'));
  if (listed === undefined) return;
  const clients = JSON.parse(listed.stdout) as EnrolledClient[];
  const live = clients.filter((c) => c.revokedAt === undefined);
  if (action.id === 'list') {
    const lines = clients.map((c) => `${c.clientId}: ${c.revokedAt === undefined ? `enrolled ${c.enrolledAt}` : `revoked ${c.revokedAt}`}`);
    services.log.info(`[clients] ${registry}:\n  ${lines.join('\n  ') || 'none'}`);
    void vscode.window.showInformationMessage(
      `FedEx: ${live.length} enrolled client${live.length === 1 ? '' : 's'} (${clients.length - live.length} revoked) in ${registry}${live.length > 0 ? `: ${live.map((c) => c.clientId).join(', ')}` : ''}.`,
      'Show Log',
    )
      .then((a) => a !== undefined && services.output.show(true));
    return;
  }
  if (live.length === 0) {
    void vscode.window.showInformationMessage(`FedEx: no client is enrolled in ${registry}.`);
    return;
  }
  const pick = await vscode.window.showQuickPick(live.map((c) => ({ label: c.clientId, description: `enrolled ${c.enrolledAt}` })), { title: 'FedEx: Revoke which client?' });
  if (pick === undefined) return;
  const sure = await vscode.window.showWarningMessage(`Revoke client '${pick.label}'? A federation using ${registry} disconnects it within a second and refuses its key from then on.`, { modal: true }, 'Revoke');
  if (sure !== 'Revoke') return;
  const done = await run(services, `FedEx: revoking ${pick.label}`, clientsArgs(registry, { revoke: pick.label }));
  if (done !== undefined) void vscode.window.showInformationMessage(`FedEx: client '${pick.label}' revoked.`);
}

/** `FedEx: Create Identity Key…`. */
export async function createIdentityKey(services: Services): Promise<void> {
  const clientId = await vscode.window.showInputBox({
    title: 'FedEx: Create Identity Key (1/2)',
    prompt: 'The client id you join under (the coordinator enrolls it with your public key)',
    ignoreFocusOut: true,
    validateInput: (v) => (isClientId(v.trim()) ? null : '1–64 letters, digits, _ or -'),
  });
  if (clientId === undefined) return;
  const id = clientId.trim();
  const target = await vscode.window.showSaveDialog({ title: 'FedEx: Create Identity Key (2/2): the private key file (keep it secret)', defaultUri: vscode.Uri.file(join(baseDir(services), `${id}.key`)), filters: { 'Identity key': ['key'] },
    saveLabel: 'Create Key' });
  if (target === undefined) return;
  const done = await run(services, 'FedEx: creating the identity key', keygenArgs(id, target.fsPath));
  if (done === undefined) return;
  const pub = `${target.fsPath.replace(/\.key$/, '')}.pub`;
  const a = await vscode.window.showInformationMessage(`FedEx: identity key for '${id}' created. Send ${pub} to the coordinator's operator to enroll.`, 'Join With This Key', 'Reveal Public Key');
  if (a === 'Join With This Key') await vscode.workspace.getConfiguration('fedex').update('joinIdentity', target.fsPath, vscode.ConfigurationTarget.Workspace);
  if (a === 'Reveal Public Key') void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(pub));
}
