/**
 * The dashboard panel controller: one WebviewPanel (local resources from dist/webview and media
 * only, fresh CSP nonce per render, no retained context), the `ready` handshake (answered with
 * `init`: every federation's folded state), then what dashboardSync.ts derives from each store
 * change, and a `reply` to each of the webview's requests. A WebviewPanelSerializer brings the
 * panel back after a reload; the webview restores its own choices with getState/setState and asks
 * again with `ready`.
 */
import * as vscode from 'vscode';
import { checkWebviewToExtension } from './messages.js';
import type { DashboardRequest, DashboardThemeKind, ExtensionToWebviewMessage, WebviewToExtensionMessage } from './messages.js';
import { changeMessage, initMessage } from './dashboardSync.js';
import { exportReport } from './exportReport.js';
import { renderDashboardHtml } from './html.js';
import { answerRequest } from './requests.js';
import type { FederationStore, StoreChange } from '../state/federationStore.js';
import type { Log } from '../process/federationRuns.js';

/** The panel's view type (also in package.json's `onWebviewPanel:` activation event). */
export const DASHBOARD_VIEW_TYPE = 'fedex.dashboard';

function themeKind(kind: vscode.ColorThemeKind): DashboardThemeKind {
  switch (kind) {
    case vscode.ColorThemeKind.Light:
      return 'light';
    case vscode.ColorThemeKind.HighContrast:
      return 'high-contrast';
    case vscode.ColorThemeKind.HighContrastLight:
      return 'high-contrast-light';
    default:
      return 'dark';
  }
}

/** Owns the (single) dashboard panel. */
export class DashboardController implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private panelDisposables: vscode.Disposable[] = [];
  /** True between the webview's `ready` and its disappearance (hidden panels lose their context). */
  private ready = false;
  private pendingSelect: string | null = null;
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
    this.post(initMessage(this.store.list(), this.pendingSelect, themeKind(vscode.window.activeColorTheme.kind)));
    this.pendingSelect = null;
  }

  private onStoreChange(change: StoreChange): void {
    if (this.panel === undefined || !this.ready) return;
    const message = changeMessage(this.store, change);
    if (message !== null) this.post(message);
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
      case 'request':
        await this.answer(message);
        return;
    }
  }

  /** Carries out a request and posts its reply (to the panel that is there then). */
  private async answer(request: DashboardRequest): Promise<void> {
    const reply = await answerRequest(request, {
      exportReport: (params) => exportReport(this.store, params, async (o) =>
        (await vscode.window.showSaveDialog({
          title: o.title,
          filters: o.format === 'html' ? { HTML: ['html'] } : { JSON: ['json'] },
          defaultUri: vscode.Uri.file(o.defaultName),
        }))?.fsPath),
    }, (err) => this.log.error(`dashboard: ${request.method} failed: ${(err as Error).stack ?? String(err)}`));
    if ('error' in reply) this.log.warn(`dashboard: ${request.method} failed (${reply.error.code}): ${reply.error.message}`);
    else if (request.method === 'exportReport' && reply.result.path !== null) this.log.info(`dashboard: report of ${request.params.federationId} written to ${reply.result.path}`);
    this.post({ type: 'reply', ...reply });
  }
}

/** Restores the dashboard after VS Code reloads (registered in `activate()`). */
export class DashboardSerializer implements vscode.WebviewPanelSerializer {
  constructor(private readonly controller: DashboardController) {}

  async deserializeWebviewPanel(panel: vscode.WebviewPanel): Promise<void> {
    this.controller.attach(panel);
  }
}
