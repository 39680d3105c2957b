/**
 * The VS Code extension's entry point: builds the container, registers the commands, the three
 * sidebar views, the status bar item and the dashboard serializer. Everything long-running happens
 * in `fedex` child processes (src/extension/process); this file only wires things together.
 */
import * as vscode from 'vscode';
import { createServices } from './services.js';
import type { Services } from './services.js';
import { DashboardController, DashboardSerializer, DASHBOARD_VIEW_TYPE } from './dashboard/panel.js';
import { NodeTreeProvider } from './views/nodeTreeProvider.js';
import { createStatusBar } from './views/statusBar.js';
import { clientNodes, federationNodes, roundNodes } from './state/treeModel.js';
import { aggregateAdapters, exportAdapter } from './commands/adapterCommands.js';
import { createIdentityKey, manageClients } from './commands/identityCommands.js';
import { hostFederation, joinFederation, leaveFederation, runSimulation, startRound, stopFederation } from './commands/federationCommands.js';
import type { SimulationOptions } from './commands/federationCommands.js';
import { federationIdOf } from './commands/pickFederation.js';
import { COMMAND_IDS, VIEW_IDS } from './commandIds.js';
import type { CommandId, ViewId } from './commandIds.js';
import type { FederationState } from './state/federationState.js';
import type { TreeNode } from './state/treeModel.js';

/** What `activate` returns: handles for tests (the test-electron suite reads them). */
export interface FedexApi {
  readonly services: Services;
  readonly commands: readonly string[];
}

/** The activated container, kept only so that `deactivate` can wait for the children to exit. */
let running: Services | undefined;

type Handler = (services: Services, arg?: unknown) => unknown;

const HANDLERS: Readonly<Record<CommandId, Handler>> = {
  'fedex.startRound': (s) => startRound(s),
  'fedex.hostFederation': (s) => hostFederation(s),
  'fedex.joinFederation': (s, arg) => joinFederation(s, arg),
  'fedex.leaveFederation': (s, arg) => leaveFederation(s, arg),
  'fedex.stopFederation': (s, arg) => stopFederation(s, arg),
  'fedex.openDashboard': (s, arg) => s.openDashboard(federationIdOf(arg)),
  'fedex.runSimulation': (s, arg) => runSimulation(s, typeof arg === 'object' && arg !== null && !('federationId' in arg) ? (arg as SimulationOptions) : {}),
  'fedex.aggregateAdapters': (s) => aggregateAdapters(s),
  'fedex.exportAdapter': (s, arg) => exportAdapter(s, arg),
  'fedex.manageClients': (s) => manageClients(s),
  'fedex.createIdentityKey': (s) => createIdentityKey(s),
};

/** The nodes each sidebar view shows. */
const VIEW_NODES: Readonly<Record<ViewId, (states: readonly FederationState[]) => TreeNode[]>> = {
  'fedex.federations': federationNodes,
  'fedex.clients': clientNodes,
  'fedex.rounds': roundNodes,
};

/** Mirrors `fedex.remoteFederations` into the store (as `remote` federations). */
function syncRemotes(services: Services): void {
  const wanted = new Map(services.settings().remoteFederations.map((r) => [`remote:${r.url}`, r]));
  for (const s of services.store.list()) if (s.kind === 'remote' && !wanted.has(s.id)) services.store.remove(s.id);
  for (const [id, r] of wanted) {
    const existing = services.store.get(id);
    if (existing === undefined) services.store.add({ id, kind: 'remote', label: r.name, url: r.url });
    else if (existing.label !== r.name) services.store.patch(id, { label: r.name });
  }
}

/** Called by VS Code on the first activation event. */
export function activate(context: vscode.ExtensionContext): FedexApi {
  // The dashboard needs the services and the services open the dashboard: bind through a holder.
  const holder: { dashboard?: DashboardController } = {};
  const services = createServices(context, (id) => holder.dashboard?.show(id));
  const dashboard = new DashboardController(context.extensionUri, services.store, services.log);
  holder.dashboard = dashboard;
  context.subscriptions.push(dashboard, vscode.window.registerWebviewPanelSerializer(DASHBOARD_VIEW_TYPE, new DashboardSerializer(dashboard)));

  const views = VIEW_IDS.map((id) => [id, new NodeTreeProvider(() => VIEW_NODES[id](services.store.list()))] as const);
  for (const [id, provider] of views) {
    context.subscriptions.push(provider, vscode.window.createTreeView(id, { treeDataProvider: provider, showCollapseAll: id !== 'fedex.federations' }));
  }
  const storeSub = services.store.onDidChange(() => views.forEach(([, p]) => p.refresh()));
  context.subscriptions.push(storeSub, createStatusBar(services.store));

  for (const id of COMMAND_IDS) {
    context.subscriptions.push(vscode.commands.registerCommand(id, async (arg?: unknown) => {
      try {
        return await HANDLERS[id](services, arg);
      } catch (err) {
        services.log.error(`${id}: ${(err as Error).stack ?? String(err)}`);
        void vscode.window.showErrorMessage(`FedEx: ${(err as Error).message}`, 'Show Log').then((a) => a !== undefined && services.output.show(true));
        return undefined;
      }
    }));
  }

  syncRemotes(services);
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration('fedex.remoteFederations')) syncRemotes(services);
  }));
  services.log.info(`FedEx activated (CLI: ${vscode.Uri.joinPath(context.extensionUri, 'dist', 'cli.cjs').fsPath}, Node ${process.version})`);
  running = services;
  return { services, commands: COMMAND_IDS };
}

/** Stops every child process (SIGTERM, SIGKILL after 2 s) before the extension host goes away. */
export async function deactivate(): Promise<void> {
  await running?.runs.stopAll(2000);
  running = undefined;
}
