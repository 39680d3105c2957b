/**
 * The dashboard webview's HTML: one template whose CSP and script/style tags carry a nonce that is
 * fresh for every render. Local resources only, no inline scripts or handlers. No vscode here (the
 * panel passes `webview.cspSource` and the resource URIs as strings).
 */
import { randomBytes } from 'node:crypto';

/** What the template needs. */
export interface DashboardHtmlOptions {
  /** `webview.cspSource`. */
  readonly cspSource: string;
  /** Webview URI of dist/webview/dashboard.js. */
  readonly scriptUri: string;
  /** Webview URI of dist/webview/dashboard.css. */
  readonly styleUri: string;
  /** Defaults to a fresh `createNonce()`. */
  readonly nonce?: string;
  readonly title?: string;
}

/** A nonce for one render: 128 random bits, base64 (letters, digits, `+`, `/`, `=` only). */
export function createNonce(): string {
  return randomBytes(16).toString('base64');
}

/** Escapes text for a text node or a double-quoted attribute value (`'` stays: the CSP keeps its quotes). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
}

/** The Content-Security-Policy of the dashboard for a given nonce. */
export function dashboardCsp(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
  ].join('; ');
}

/** Renders the dashboard page. */
export function renderDashboardHtml(o: DashboardHtmlOptions): string {
  const nonce = o.nonce ?? createNonce();
  if (!/^[A-Za-z0-9+/=]+$/.test(nonce)) throw new Error(`renderDashboardHtml: nonce must be base64, got '${nonce}'`);
  const attr = escapeHtml;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(dashboardCsp(o.cspSource, nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" nonce="${nonce}" href="${attr(o.styleUri)}">
<title>${escapeHtml(o.title ?? 'FedEx Dashboard')}</title>
</head>
<body>
<div id="app" role="main"><p id="fedex-loading">Loading the FedEx dashboard…</p></div>
<script nonce="${nonce}" src="${attr(o.scriptUri)}"></script>
</body>
</html>
`;
}
