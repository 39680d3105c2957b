/**
 * The webview side of VS Code's API (`acquireVsCodeApi`, injected by VS Code before any script
 * runs; the preview page injects a shim), typed for the dashboard's messages.
 */
import type { WebviewToExtensionMessage } from '../src/extension/dashboard/messages.js';

/** What `acquireVsCodeApi()` returns (it may be called once per page). */
export interface VsCodeApi {
  postMessage(message: WebviewToExtensionMessage): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare global {
  function acquireVsCodeApi(): VsCodeApi;
}

/** The API, or a stand-in that drops messages when the page runs outside VS Code. */
export function vsCodeApi(): VsCodeApi {
  if (typeof acquireVsCodeApi === 'function') return acquireVsCodeApi();
  let saved: unknown;
  return { postMessage: () => undefined, getState: () => saved, setState: (s) => (saved = s) };
}
