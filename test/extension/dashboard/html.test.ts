import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNonce, renderDashboardHtml } from '../../../src/extension/dashboard/html.js';

const opts = { cspSource: 'https://file+.vscode-resource.vscode-cdn.net', scriptUri: 'https://res/dist/webview/dashboard.js', styleUri: 'https://res/dist/webview/dashboard.css' };

function cspOf(html: string): string {
  const m = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html);
  assert.ok(m, 'no CSP meta tag');
  return m[1];
}

describe('renderDashboardHtml', () => {
  test('a fresh nonce per render, in the CSP and on every script and style tag', () => {
    // act
    const a = renderDashboardHtml(opts);
    const b = renderDashboardHtml(opts);
    // assert
    const nonceA = /script-src 'nonce-([^']+)'/.exec(cspOf(a))?.[1];
    const nonceB = /script-src 'nonce-([^']+)'/.exec(cspOf(b))?.[1];
    assert.ok(nonceA !== undefined && nonceA.length >= 22, 'nonce too short');
    assert.notEqual(nonceA, nonceB);
    for (const tag of a.match(/<(script|link)\b[^>]*>/g) ?? []) assert.ok(tag.includes(`nonce="${nonceA}"`), `tag without the nonce: ${tag}`);
    assert.equal((a.match(/<script\b/g) ?? []).length, 1);
  });

  test('the CSP is strict: nothing by default, scripts by nonce only, local styles, images and fonts', () => {
    const csp = cspOf(renderDashboardHtml({ ...opts, nonce: 'abc123==' }));
    assert.equal(csp,
      "default-src 'none'; script-src 'nonce-abc123=='; style-src https://file+.vscode-resource.vscode-cdn.net 'nonce-abc123=='; img-src https://file+.vscode-resource.vscode-cdn.net data:; font-src https://file+.vscode-resource.vscode-cdn.net");
    assert.ok(!csp.includes('unsafe'));
  });

  test('no inline scripts or handlers; the bundle and stylesheet are loaded from their URIs', () => {
    const html = renderDashboardHtml(opts);
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, 'inline event handler');
    assert.doesNotMatch(html, /<script\b(?![^>]*\bsrc=)[^>]*>/, 'inline script');
    assert.doesNotMatch(html, /javascript:/i);
    assert.match(html, /<script nonce="[^"]+" src="https:\/\/res\/dist\/webview\/dashboard\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" nonce="[^"]+" href="https:\/\/res\/dist\/webview\/dashboard\.css">/);
  });

  test('URIs and title are escaped; a non-base64 nonce is refused', () => {
    const html = renderDashboardHtml({ ...opts, scriptUri: 'https://x/a"b.js', title: '<b>' });
    assert.ok(html.includes('src="https://x/a&quot;b.js"'));
    assert.ok(html.includes('<title>&lt;b&gt;</title>'));
    assert.throws(() => renderDashboardHtml({ ...opts, nonce: "x' 'unsafe-inline" }), /nonce/);
    assert.match(createNonce(), /^[A-Za-z0-9+/]{22}==$/);
  });
});
