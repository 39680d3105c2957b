/**
 * The dashboard's entry point (bundled to dist/webview/dashboard.js, loaded with the page's nonce):
 * restores the saved model, posts `ready`, folds validated extension messages into the model,
 * re-renders once per frame and saves the model with `setState` so the panel comes back as it was
 * after being hidden or after a VS Code reload. Export is a request: the extension saves the report
 * and its reply says where (or why not).
 */
import { checkExtensionToWebview, DASHBOARD_PROTOCOL_VERSION } from '../src/extension/dashboard/messages.js';
import type { UiChoice } from './model.js';
import { DashboardRequestFailure, RequestClient } from './requests.js';
import { applyChoice, applyMessage, restoreState } from './state.js';
import { readTheme, watchTheme } from './theme.js';
import { DashboardView } from './view.js';
import { vsCodeApi } from './vscodeApi.js';

const api = vsCodeApi();
const requests = new RequestClient((message) => api.postMessage(message));
const state = restoreState(api.getState());
const root = document.getElementById('dashboard') ?? document.body;
let frame = 0;

function schedule(): void {
  if (frame !== 0) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    view.render(state);
    api.setState(state);
    document.body.dataset.ready = 'true';
  });
}

/** Asks the extension to save the selected federation's report: HTML when the CLI wrote one, else JSON. */
async function exportReport(): Promise<void> {
  const federation = state.federations.find((f) => f.id === state.selected);
  if (federation === undefined) return;
  const format = federation.reportHtml !== null ? 'html' : 'json';
  view.showExport('pending', `Exporting the ${format.toUpperCase()} report…`);
  try {
    const { path } = await requests.request('exportReport', { federationId: federation.id, format });
    view.showExport(path === null ? 'idle' : 'saved', path === null ? '' : `Report saved to ${path}`);
  } catch (err) {
    view.showExport('failed', err instanceof DashboardRequestFailure ? err.message : `Export failed: ${(err as Error).message}`);
  }
}

function choose(choice: UiChoice): void {
  if (choice.kind === 'export') {
    void exportReport();
    return;
  }
  applyChoice(state, choice);
  schedule();
}

const view = new DashboardView(root, readTheme(document.body), choose);

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const check = checkExtensionToWebview(event.data);
  if (!check.ok) {
    api.postMessage({ type: 'log', level: 'warn', message: `dashboard: ignored a message (${check.code}): ${check.reason}` });
    return;
  }
  if (check.message.type === 'reply') {
    requests.settle(check.message);
    return;
  }
  applyMessage(state, check.message);
  schedule();
});
window.addEventListener('error', (event) => {
  api.postMessage({ type: 'log', level: 'error', message: `dashboard: ${event.message}` });
});
watchTheme(document.body, (theme) => {
  view.setTheme(theme);
  schedule();
});

view.render(state);
api.postMessage({ type: 'ready', version: DASHBOARD_PROTOCOL_VERSION });
