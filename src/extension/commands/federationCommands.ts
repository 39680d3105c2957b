/**
 * The federation commands: run a local simulation, host, join, leave, stop, start a round. Each
 * starts or stops a `fedex` child process through `Services.runs`; none blocks the extension host.
 */
import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { hostArgs, joinArgs, simulateArgs, tokenEnv, validateFederationUrl } from '../config/cliArgs.js';
import type { Services } from '../services.js';
import { activeRun, type FederationState } from '../state/federationState.js';
import { FederationBusyError } from '../process/federationRuns.js';
import { followWithProgress } from './progress.js';
import { federationIdOf, pickFederation } from './pickFederation.js';
import { startRoundAction } from './startRoundAction.js';

let counter = 0;
/** A federation id unique for this session (so the dashboard never mixes two runs' histories). */
function newId(kind: string): string {
  counter += 1;
  return `${kind}:${Date.now().toString(36)}-${counter}`;
}

function startFailed(services: Services, what: string, err: unknown): void {
  const message = err instanceof FederationBusyError ? err.message : `could not start ${what}: ${(err as Error).message}`;
  services.log.error(message);
  void vscode.window.showErrorMessage(`FedEx: ${message}`, 'Show Log').then((a) => a !== undefined && services.output.show(true));
}

/** Options a caller (tests, other commands) may pass to `fedex.runSimulation`. */
export interface SimulationOptions {
  readonly methods?: readonly string[];
  readonly clients?: number;
  readonly rounds?: number;
}

/** `FedEx: Run Local Simulation`: `fedex simulate` with the settings; progress notification with cancel. */
export async function runSimulation(services: Services, options: SimulationOptions = {}): Promise<FederationState | undefined> {
  const settings = { ...services.settings(), ...(options.rounds !== undefined ? { rounds: options.rounds } : {}) };
  const out = services.newRunDir('simulate');
  const id = newId('simulation');
  try {
    services.runs.start({
      id,
      kind: 'simulation',
      label: `Local simulation ${new Date().toLocaleTimeString()}`,
      args: simulateArgs(settings, { out, methods: options.methods, clients: options.clients }),
      outDir: out,
      totalRounds: settings.rounds,
      method: options.methods?.[0] ?? null,
      cwd: services.cwd(),
    });
  } catch (err) {
    startFailed(services, 'the simulation', err);
    return undefined;
  }
  const final = await followWithProgress(services, id, 'FedEx: local simulation');
  if (final?.phase === 'done') {
    const actions = final.reportHtml !== null ? ['Open Dashboard', 'Open Report'] : ['Open Dashboard'];
    void vscode.window.showInformationMessage(`FedEx: simulation finished (${final.runs.filter((r) => r.summary !== null).length} methods compared). Results in ${out}.`, ...actions).then((a) => {
      if (a === 'Open Dashboard') services.openDashboard(id);
      if (a === 'Open Report' && final.reportHtml !== null) void vscode.env.openExternal(vscode.Uri.file(final.reportHtml));
    });
  } else if (final?.phase === 'failed') {
    void vscode.window.showErrorMessage(`FedEx: the simulation failed: ${final.lastError ?? 'see the log'}.`, 'Show Log').then((a) => a !== undefined && services.output.show(true));
  }
  return final;
}

/** `FedEx: Host Federation`: a coordinator on fedex.bindAddress:fedex.port with a fresh join token. */
export async function hostFederation(services: Services): Promise<FederationState | undefined> {
  const live = services.store.list().find((s) => s.kind === 'host' && s.live);
  if (live !== undefined) {
    void vscode.window.showInformationMessage(`FedEx: ${live.label} is already hosted (${live.phase}). Stop it before hosting another.`, 'Open Dashboard')
      .then((a) => a !== undefined && services.openDashboard(live.id));
    return live;
  }
  const settings = services.settings();
  const token = randomBytes(24).toString('base64url');
  const out = services.newRunDir('host');
  const id = newId('host');
  const hostPart = settings.bindAddress.includes(':') ? `[${settings.bindAddress}]` : settings.bindAddress;
  const url = `ws://${hostPart === '0.0.0.0' ? '127.0.0.1' : hostPart}:${settings.port}`;
  try {
    services.runs.start({
      id,
      kind: 'host',
      label: `Hosted :${settings.port}`,
      args: hostArgs(settings, { out }),
      env: tokenEnv(token),
      outDir: out,
      totalRounds: settings.rounds,
      method: settings.method,
      manualRounds: settings.manualRounds,
      cwd: services.cwd(),
    });
  } catch (err) {
    startFailed(services, 'the federation', err);
    return undefined;
  }
  // Tell the host how to invite clients once the coordinator listens (its real URL comes with `listening`).
  const sub = services.store.onDidChange((c) => {
    const s = services.store.get(id);
    if (c.id !== id || s === undefined) return;
    if (s.phase === 'waiting' || !s.live) sub.dispose();
    if (!s.live && s.phase === 'failed') {
      void vscode.window.showErrorMessage(`FedEx: hosting failed: ${s.lastError ?? 'see the log'}`, 'Show Log', 'Open Settings').then((a) => {
        if (a === 'Show Log') services.output.show(true);
        if (a === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'fedex');
      });
    }
    if (s.phase === 'waiting' && s.live && settings.hostClients !== '') {
      // Clients are admitted by key: there is no token to hand out.
      const shownUrl = s.url ?? url;
      void vscode.window.showInformationMessage(`FedEx: hosting at ${shownUrl} (${settings.method}, ${settings.rounds} rounds) for the clients enrolled in ${settings.hostClients}.`, 'Manage Enrolled Clients', 'Copy URL', 'Open Dashboard')
        .then((a) => {
          if (a === 'Manage Enrolled Clients') void vscode.commands.executeCommand('fedex.manageClients');
          if (a === 'Copy URL') void vscode.env.clipboard.writeText(shownUrl);
          if (a === 'Open Dashboard') services.openDashboard(id);
        });
    } else if (s.phase === 'waiting' && s.live) {
      const shownUrl = s.url ?? url;
      void services.tokens.set(shownUrl, token);
      const joined = `${settings.minClients} client${settings.minClients === 1 ? ' has' : 's have'} joined`;
      const wait = settings.manualRounds ? `Once ${joined}, run FedEx: Start Round for each round.` : `Rounds start once ${joined}.`;
      void vscode.window.showInformationMessage(`FedEx: hosting at ${shownUrl} (${settings.method}, ${settings.rounds} rounds). ${wait}`, 'Copy Join Token', 'Copy URL', 'Open Dashboard')
        .then((a) => {
          if (a === 'Copy Join Token') void vscode.env.clipboard.writeText(token);
          if (a === 'Copy URL') void vscode.env.clipboard.writeText(shownUrl);
          if (a === 'Open Dashboard') services.openDashboard(id);
        });
    }
  });
  services.context.subscriptions.push(sub);
  return services.store.get(id);
}

/** Asks for a federation URL: remote federations from settings, or typed in. */
async function askUrl(services: Services): Promise<{ url: string; name: string } | undefined> {
  const remotes = services.settings().remoteFederations;
  let url: string | undefined;
  let name: string | undefined;
  if (remotes.length > 0) {
    const typed = { label: '$(edit) Enter a URL…', url: '', name: '' };
    const picked = await vscode.window.showQuickPick([...remotes.map((r) => ({ label: r.name, description: r.url, url: r.url, name: r.name })), typed], { title: 'FedEx: Join Federation', placeHolder: 'Federation to join' });
    if (picked === undefined) return undefined;
    if (picked !== typed) ({ url, name } = picked);
  }
  url ??= await vscode.window.showInputBox({
    title: 'FedEx: Join Federation',
    prompt: 'Coordinator URL',
    placeHolder: 'ws://host:8765',
    ignoreFocusOut: true,
    validateInput: (v) => validateFederationUrl(v.trim()),
  });
  if (url === undefined) return undefined;
  url = url.trim();
  return { url, name: name ?? remotes.find((r) => r.url === url)?.name ?? url };
}

/** `FedEx: Join Federation`: asks for URL and token (kept in SecretStorage by URL) and runs `fedex join`. */
export async function joinFederation(services: Services, arg?: unknown): Promise<FederationState | undefined> {
  const fromTree = federationIdOf(arg) !== undefined ? services.store.get(federationIdOf(arg)!) : undefined;
  const target = fromTree !== undefined && fromTree.url !== null ? { url: fromTree.url, name: fromTree.label } : await askUrl(services);
  if (target === undefined) return undefined;
  const live = services.store.list().find((s) => s.kind === 'join' && s.live && s.url === target.url);
  if (live !== undefined) {
    void vscode.window.showInformationMessage(`FedEx: already joined ${target.name} (${live.phase}).`);
    return live;
  }
  const byKey = services.settings().joinIdentity !== '';
  let token = byKey ? '' : await services.tokens.get(target.url);
  if (token === undefined) {
    token = await vscode.window.showInputBox({ title: `FedEx: join ${target.name}`, prompt: 'Join token (from the host)', password: true, ignoreFocusOut: true, validateInput: (v) => (v.trim() === '' ? 'The token is required.' : null) });
    if (token === undefined) return undefined;
    token = token.trim();
    await services.tokens.set(target.url, token);
  }
  const id = newId('join');
  const out = services.newRunDir('join');
  try {
    services.runs.start({
      id,
      kind: 'join',
      label: target.name,
      url: target.url,
      outDir: out,
      args: joinArgs(services.settings(), { url: target.url, out: join(out, 'final-adapter') }),
      env: byKey ? {} : tokenEnv(token),
      cwd: services.cwd(),
    });
  } catch (err) {
    startFailed(services, `joining ${target.url}`, err);
    return undefined;
  }
  // A refused token is forgotten so the next join asks again.
  const sub = services.store.onDidChange((c) => {
    const s = services.store.get(id);
    if (c.id !== id || s === undefined || s.live) return;
    sub.dispose();
    if (s.phase === 'failed' && byKey && /E_AUTH/.test(s.lastError ?? '')) {
      void vscode.window.showErrorMessage(`FedEx: ${target.name} refused this client's key: ${s.lastError ?? 'E_AUTH'}. Ask its operator to enroll your public key (.pub).`, 'Show Log').then((a) =>
        a !== undefined && services.output.show(true)
      );
    } else if (s.phase === 'failed' && /E_AUTH/.test(s.lastError ?? '')) {
      void services.tokens.delete(target.url);
      void vscode.window.showErrorMessage(`FedEx: ${target.name} refused the join token; it was forgotten. Join again to enter another.`);
    } else if (s.phase === 'failed') {
      void vscode.window.showErrorMessage(`FedEx: left ${target.name}: ${s.lastError ?? 'see the log'}.`, 'Show Log').then((a) => a !== undefined && services.output.show(true));
    }
  });
  services.context.subscriptions.push(sub);
  return services.store.get(id);
}

/** `FedEx: Leave Federation`: stops a joined client. */
export async function leaveFederation(services: Services, arg?: unknown): Promise<void> {
  const s = await pickFederation(services.store, arg, (f) => f.kind === 'join' && f.live, { title: 'FedEx: Leave Federation', none: 'no joined federation is running.' });
  if (s !== undefined) await services.runs.stop(s.id);
}

/** `FedEx: Stop Federation`: stops a hosted federation (after confirmation) or a simulation. */
export async function stopFederation(services: Services, arg?: unknown): Promise<void> {
  const s = await pickFederation(services.store, arg, (f) => (f.kind === 'host' || f.kind === 'simulation') && f.live, { title: 'FedEx: Stop Federation', none: 'no hosted federation or simulation is running.' });
  if (s === undefined) return;
  if (s.kind === 'host' && (activeRun(s)?.clients ?? []).some((c) => c.connected)) {
    const ok = await vscode.window.showWarningMessage(`Stop ${s.label}? Its clients will be disconnected; completed rounds stay saved in ${s.outDir ?? 'the run folder'}.`, { modal: true }, 'Stop');
    if (ok !== 'Stop') return;
  }
  await services.runs.stop(s.id);
}

/**
 * `FedEx: Start Round` (what it does is decided in startRoundAction.ts): with a hosted federation
 * in manual-rounds mode (`fedex.manualRounds` when it was hosted), sends `start` to its process and
 * says which round that starts; with automatic rounds, says where it is (rounds follow by
 * themselves once `fedex.minClients` have joined); with none, offers to host one or to run one
 * local FedEx round (`fedex simulate --methods fedex --rounds 1`).
 */
export async function startRound(services: Services): Promise<void> {
  const settings = services.settings();
  const action = startRoundAction(services.store.list(), settings.minClients);
  if (action.kind === 'send') {
    if (!services.runs.send(action.federationId, action.line)) {
      void vscode.window.showErrorMessage('FedEx: the hosted federation is no longer running; nothing was started.', 'Show Log').then((a) => a !== undefined && services.output.show(true));
      return;
    }
    services.log.info(`Start Round: ${action.message}`);
    vscode.window.setStatusBarMessage(`$(debug-start) FedEx: ${action.message}`, 5000);
    // A round that starts now shows in the status bar and the views; one that waits is worth a notification.
    if (!action.startsNow) {
      void vscode.window.showInformationMessage(`FedEx: ${action.message}`, 'Open Dashboard').then((a) => a !== undefined && services.openDashboard(action.federationId));
    }
    return;
  }
  if (action.kind === 'inform') {
    const hosted = services.store.get(action.federationId);
    void vscode.window.showInformationMessage(`FedEx: ${action.message}`, 'Copy URL', 'Open Dashboard').then((a) => {
      if (a === 'Copy URL' && hosted !== undefined && hosted.url !== null) void vscode.env.clipboard.writeText(hosted.url);
      if (a === 'Open Dashboard') services.openDashboard(action.federationId);
    });
    return;
  }
  const rule = settings.manualRounds ? 'each round runs when you start it' : `rounds start once ${settings.minClients} clients have joined (fedex.minClients)`;
  const host = { label: '$(server) Host a federation', detail: `With fedex.manualRounds ${settings.manualRounds ? 'on' : 'off'}: ${rule}.` };
  const local = { label: '$(beaker) Run one local round', detail: 'FedEx-LoRA, one round, clients simulated on this machine.' };
  const picked = await vscode.window.showQuickPick([host, local], { title: 'FedEx: Start Round', placeHolder: 'No hosted federation is running' });
  if (picked === host) await hostFederation(services);
  if (picked === local) await runSimulation(services, { methods: ['fedex'], rounds: 1 });
}
