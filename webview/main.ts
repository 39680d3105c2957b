/**
 * The dashboard's entry point (bundled to dist/webview/dashboard.js, loaded with the page's nonce):
 * restores the saved model, posts `ready`, folds validated extension messages into the model,
 * re-renders once per frame and saves the model with `setState` so the panel comes back as it was
 * after being hidden or after a VS Code reload.
 */
import { checkExtensionToWebview, DASHBOARD_PROTOCOL_VERSION } from '../src/extension/dashboard/messages.js';
import { applyMessage, restoreState } from './state.js';
import { readTheme, watchTheme } from './theme.js';
import { DashboardView, type UiChoice } from './view.js';
import { vsCodeApi } from './vscodeApi.js';

const api = vsCodeApi();
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

function choose(choice: UiChoice): void {
  switch (choice.kind) {
    case 'federation':
      if (choice.value !== state.selected) state.ui = { ...state.ui, run: null, module: null, round: null };
      state.selected = choice.value;
      break;
    case 'run':
      state.ui.run = choice.value;
      state.ui.round = null;
      break;
    case 'round':
      state.ui.round = choice.value;
      break;
    case 'module':
      state.ui.module = choice.value;
      if (state.selected !== null) api.postMessage({ type: 'selectModule', federationId: state.selected, module: choice.value });
      break;
    case 'factor':
      state.ui.factor = choice.value;
      break;
    case 'export':
      if (state.selected !== null) api.postMessage({ type: 'exportReport', federationId: state.selected, format: 'html' });
      return;
  }
  schedule();
}

const view = new DashboardView(root, readTheme(document.body), choose);

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const check = checkExtensionToWebview(event.data);
  if (!check.ok) {
    api.postMessage({ type: 'log', level: 'warn', message: `dashboard: ignored a message (${check.code}): ${check.reason}` });
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
