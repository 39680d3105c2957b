/**
 * The dashboard panel controller: one WebviewPanel (local resources from dist/webview and media
 * only, fresh CSP nonce per render, no retained context), the `ready` handshake (answered with
 * `init`: every federation and its event history), then live `events` batches and `federations`
 * updates. A WebviewPanelSerializer brings the panel back after a reload; the webview restores its
 * own choices with getState/setState and asks again with `ready`.
 */
import * as vscode from 'vscode';
import { copyFile, writeFile } from 'node:fs/promises';
import { checkWebviewToExtension, DASHBOARD_PROTOCOL_VERSION } from './messages.js';
import type { DashboardEvent, DashboardFederation, DashboardThemeKind, ExtensionToWebviewMessage, WebviewToExtensionMessage } from './messages.js';
import { renderDashboardHtml } from './html.js';
import type { FederationStore, StoreChange } from '../state/federationStore.js';
import type { FederationState } from '../state/federationState.js';
import type { Log } from '../process/federationRuns.js';

/** The panel's view type (also in package.json's `onWebviewPanel:` activation event). */
export const DASHBOARD_VIEW_TYPE = 'fedex.dashboard';

/** The federations as the dashboard lists them (remote ones not joined have no data: left out). */
export function dashboardFederations(states: readonly FederationState[]): DashboardFederation[] {
  return states.filter((s) => s.kind !== 'remote').map((s) => ({ id: s.id, label: s.label, kind: s.kind, live: s.live }));
}

function themeKind(kind: vscode.ColorThemeKind): DashboardThemeKind {
  switch (kind) {
    case vscode.ColorThemeKind.Light: return 'light';
    case vscode.ColorThemeKind.HighContrast: return 'high-contrast';
    case vscode.ColorThemeKind.HighContrastLight: return 'high-contrast-light';
    default: return 'dark';
  }
}

/** Owns the (single) dashboard panel. */
export class DashboardController implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private panelDisposables: vscode.Disposable[] = [];
  /** True between the webview's `ready` and its disappearance (hidden panels lose their context). */
  private ready = false;
  private pendingSelect: string | null = null;
  private lastFederations = '';
  private readonly storeSub: { dispose(): void };

  constructor(private readonly extensionUri: vscode.Uri, private readonly store: FederationStore, private readonly log: Log) {
    this.storeSub = store.onDidChange((change) => this.onStoreChange(change));
  }

  /** Opens the panel (or reveals it) and focuses `federationId` when given. */
  show(federationId?: string): void {
    const select = federationId ?? this.store.active()?.id ?? null;
    if (this.panel !== undefined) {
      this.panel.reveal(undefined, false);
      if (select !== null) {
        if (this.ready) this.post({ type: 'select', federationId: select });
        else this.pendingSelect = select;
      }
      return;
    }
    this.pendingSelect = select;
    const panel = vscode.window.createWebviewPanel(DASHBOARD_VIEW_TYPE, 'FedEx Dashboard', vscode.ViewColumn.Active, this.webviewOptions());
    this.attach(panel);
  }

  /** Takes over a panel (a new one, or one restored by the serializer after a reload). */
  attach(panel: vscode.WebviewPanel): void {
    this.detach();
    this.panel = panel;
    this.ready = false;
    this.lastFederations = '';
    panel.webview.options = this.webviewOptions();
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'fedex.svg');
    this.panelDisposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)),
      panel.onDidChangeViewState(() => {
        // Without retainContextWhenHidden the webview is torn down when hidden; it sends `ready` again when shown.
        if (!panel.visible) this.ready = false;
      }),
      panel.onDidDispose(() => {
        if (this.panel === panel) {
          this.detach();
          this.panel = undefined;
        }
      }),
    );
    panel.webview.html = this.html(panel.webview);
  }

  dispose(): void {
    this.storeSub.dispose();
    this.panel?.dispose();
    this.detach();
  }

  private webviewOptions(): vscode.WebviewOptions & vscode.WebviewPanelOptions {
    return {
      enableScripts: true,
      retainContextWhenHidden: false,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    };
  }

  private html(webview: vscode.Webview): string {
    const asset = (name: string): string => webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview', name)).toString();
    return renderDashboardHtml({ cspSource: webview.cspSource, scriptUri: asset('dashboard.js'), styleUri: asset('dashboard.css') });
  }

  private detach(): void {
    this.panelDisposables.forEach((d) => d.dispose());
    this.panelDisposables = [];
    this.ready = false;
  }

  private post(message: ExtensionToWebviewMessage): void {
    void this.panel?.webview.postMessage(message);
  }

  private sendInit(): void {
    const states = this.store.list();
    const federations = dashboardFederations(states);
    const history: Record<string, readonly DashboardEvent[]> = {};
    for (const f of federations) history[f.id] = this.store.events(f.id) as DashboardEvent[];
    const selected = this.pendingSelect !== null && federations.some((f) => f.id === this.pendingSelect) ? this.pendingSelect : null;
    this.pendingSelect = null;
    this.lastFederations = JSON.stringify(federations);
    this.post({ type: 'init', version: DASHBOARD_PROTOCOL_VERSION, federations, history, selected, theme: themeKind(vscode.window.activeColorTheme.kind) });
  }

  private onStoreChange(change: StoreChange): void {
    if (this.panel === undefined || !this.ready) return;
    const federations = dashboardFederations(this.store.list());
    const text = JSON.stringify(federations);
    if (text !== this.lastFederations) {
      this.lastFederations = text;
      this.post({ type: 'federations', federations });
    }
    if (change.events !== undefined && change.events.length > 0 && federations.some((f) => f.id === change.id)) {
      this.post({ type: 'events', federationId: change.id, events: change.events as DashboardEvent[] });
    }
  }

  private async onMessage(raw: unknown): Promise<void> {
    const checked = checkWebviewToExtension(raw);
    if (!checked.ok) {
      this.log.warn(`dashboard: ignored a message (${checked.code}): ${checked.reason}`);
      return;
    }
    const message: WebviewToExtensionMessage = checked.message;
    switch (message.type) {
      case 'ready':
        this.ready = true;
        this.sendInit();
        return;
      case 'log':
        this.log[message.level](`dashboard: ${message.message}`);
        return;
      case 'selectModule':
        this.log.info(`dashboard: module ${message.module} selected for ${message.federationId}`);
        return;
      case 'exportReport':
        await this.exportReport(message.federationId, message.format);
        return;
    }
  }

  /** Saves a federation's report: the CLI's report.json/html when it wrote one, else the event history as JSON. */
  private async exportReport(federationId: string, format: 'json' | 'html'): Promise<void> {
    const state = this.store.get(federationId);
    if (state === undefined) return;
    const source = format === 'html' ? state.reportHtml : state.reportJson;
    if (format === 'html' && source === null) {
      void vscode.window.showWarningMessage(`FedEx: ${state.label} has no HTML report (only \`fedex simulate\` writes one). Export it as JSON instead.`);
      return;
    }
    const target = await vscode.window.showSaveDialog({
      title: `Export the report of ${state.label}`,
      filters: format === 'html' ? { HTML: ['html'] } : { JSON: ['json'] },
      defaultUri: vscode.Uri.file(`fedex-report.${format}`),
    });
    if (target === undefined) return;
    try {
      if (source !== null) await copyFile(source, target.fsPath);
      else await writeFile(target.fsPath, `${JSON.stringify({ federation: state, events: this.store.events(federationId) }, null, 1)}\n`);
      this.log.info(`dashboard: report of ${state.label} written to ${target.fsPath}`);
    } catch (err) {
      this.log.error(`dashboard: could not write ${target.fsPath}: ${(err as Error).message}`);
      void vscode.window.showErrorMessage(`FedEx: could not write the report to ${target.fsPath}: ${(err as Error).message}`);
    }
  }
}

/** Restores the dashboard after VS Code reloads (registered in `activate()`). */
export class DashboardSerializer implements vscode.WebviewPanelSerializer {
  constructor(private readonly controller: DashboardController) {}

  async deserializeWebviewPanel(panel: vscode.WebviewPanel): Promise<void> {
    this.controller.attach(panel);
  }
}
