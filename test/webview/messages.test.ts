// Validation of the dashboard messages (src/extension/dashboard/messages.ts) in both directions:
// well-formed messages pass, malformed ones are rejected with a stable code and a reason.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkExtensionToWebview,
  checkWebviewToExtension,
  DASHBOARD_PROTOCOL_VERSION,
  MAX_MESSAGE_STRING,
} from '../../src/extension/dashboard/messages.js';
import { initialFederation, reduceFederation } from '../../src/extension/state/federationState.js';
import { folded } from './helpers.js';

const event = { type: 'round_started', time: 1, round: 1, sampled: ['c0'], quorum: 1, deadline: 2, baseRevision: 0 };
const federation = reduceFederation(initialFederation({ id: 'f1', label: 'host on :7070', kind: 'host' }), event);
const V = DASHBOARD_PROTOCOL_VERSION;

describe('extension → webview messages', () => {
  test('well-formed messages pass', () => {
    const good = [
      { type: 'init', version: V, federations: [federation, folded()], selected: null, theme: 'dark' },
      { type: 'init', version: V, federations: [], selected: 'f1', theme: 'high-contrast-light' },
      { type: 'events', federationId: 'f1', events: [event, { ...event, method: 'fedex' }, { type: 'newer_event', time: 2 }] },
      { type: 'federation', federation: { ...federation, live: false, phase: 'failed', lastError: 'exit code 1' } },
      { type: 'select', federationId: 'f1' },
      { type: 'reply', id: 1, method: 'exportReport', result: { path: '/tmp/fedex-report.html' } },
      { type: 'reply', id: 2, method: 'exportReport', result: { path: null } },
      { type: 'reply', id: 3, method: 'exportReport', error: { code: 'E_NO_REPORT', message: 'no HTML report' } },
    ];
    for (const m of good) assert.deepEqual(checkExtensionToWebview(m), { ok: true, message: m }, m.type);
  });

  test('malformed messages are rejected with a code', () => {
    const run = federation.runs[0];
    const cases: [unknown, string, RegExp][] = [
      [null, 'E_NOT_OBJECT', /not an object/],
      [[{ type: 'select' }], 'E_NOT_OBJECT', /not an object/],
      [{ type: 'ready', version: V }, 'E_UNKNOWN_TYPE', /"ready"/],
      [{ type: 'toString' }, 'E_UNKNOWN_TYPE', /toString/],
      [{ federationId: 'f1' }, 'E_UNKNOWN_TYPE', /null/],
      [{ type: 'federations', federations: [] }, 'E_UNKNOWN_TYPE', /"federations"/],
      [{ type: 'select', federationId: '' }, 'E_BAD_FIELD', /federationId/],
      [{ type: 'events', federationId: 'f1', events: {} }, 'E_BAD_FIELD', /events is not an array/],
      [{ type: 'events', federationId: 'f1', events: [event, { type: 'x' }] }, 'E_BAD_FIELD', /events\[1\]/],
      [{ type: 'events', federationId: 'f1', events: [{ ...event, time: Number.NaN }] }, 'E_BAD_FIELD', /events\[0\]/],
      [{ type: 'events', federationId: 'f1', events: [{ ...event, method: 3 }] }, 'E_BAD_FIELD', /events\[0\]/],
      [{ type: 'federation', federation: { ...federation, kind: 'pirate' } }, 'E_BAD_FIELD', /federation is not/],
      [{ type: 'federation', federation: { ...federation, label: 'x'.repeat(MAX_MESSAGE_STRING + 1) } }, 'E_BAD_FIELD', /federation is not/],
      [{ type: 'federation', federation: { ...federation, phase: 'waiting for godot' } }, 'E_BAD_FIELD', /federation is not/],
      [{ type: 'federation', federation: { ...federation, runs: [{ ...run, clients: [{ id: 'c0', name: 'c0', connected: true, status: 'reported' }] }] } }, 'E_BAD_FIELD', /federation is not/],
      [{ type: 'federation', federation: { ...federation, runs: [{ ...run, rounds: {} }] } }, 'E_BAD_FIELD', /federation is not/],
      [{ type: 'init', version: V, federations: {}, selected: null, theme: 'dark' }, 'E_BAD_FIELD', /federations is not an array/],
      [{ type: 'init', version: V, federations: [{ id: 'f1', label: 'f1', kind: 'host', live: true }], selected: null, theme: 'dark' }, 'E_BAD_FIELD', /federations\[0\]/],
      [{ type: 'init', version: V, federations: [], selected: null, theme: 'sepia' }, 'E_BAD_FIELD', /theme/],
      [{ type: 'init', version: V, federations: [], theme: 'dark' }, 'E_BAD_FIELD', /selected/],
      [{ type: 'init', version: 99, federations: [], selected: null, theme: 'dark' }, 'E_VERSION', /version 99/],
      [{ type: 'reply', id: 1, method: 'selectModule', result: {} }, 'E_UNKNOWN_METHOD', /selectModule/],
      [{ type: 'reply', id: 0, method: 'exportReport', result: { path: null } }, 'E_BAD_FIELD', /id/],
      [{ type: 'reply', id: 1, method: 'exportReport' }, 'E_BAD_FIELD', /either a result or an error/],
      [{ type: 'reply', id: 1, method: 'exportReport', result: { path: null }, error: { code: 'E_NO_REPORT', message: 'x' } }, 'E_BAD_FIELD', /either/],
      [{ type: 'reply', id: 1, method: 'exportReport', result: { path: 7 } }, 'E_BAD_FIELD', /result\.path/],
      [{ type: 'reply', id: 1, method: 'exportReport', error: { code: 'E_SOMETHING', message: 'x' } }, 'E_BAD_FIELD', /error is not/],
    ];
    for (const [m, code, reason] of cases) {
      const r = checkExtensionToWebview(m);
      assert.equal(r.ok, false, JSON.stringify(m).slice(0, 120));
      if (!r.ok) {
        assert.equal(r.code, code, JSON.stringify(m).slice(0, 120));
        assert.match(r.reason, reason);
      }
    }
  });
});

describe('webview → extension messages', () => {
  test('well-formed messages pass', () => {
    const good = [
      { type: 'ready', version: V },
      { type: 'request', id: 1, method: 'exportReport', params: { federationId: 'f1', format: 'html' } },
      { type: 'request', id: 2, method: 'exportReport', params: { federationId: 'f1', format: 'json' } },
      { type: 'log', level: 'warn', message: 'something' },
    ];
    for (const m of good) assert.deepEqual(checkWebviewToExtension(m), { ok: true, message: m }, m.type);
  });

  test('malformed messages are rejected with a code; selectModule is gone', () => {
    const cases: [unknown, string][] = [
      ['ready', 'E_NOT_OBJECT'],
      [{ type: 'init' }, 'E_UNKNOWN_TYPE'],
      [{ type: 'ready' }, 'E_BAD_FIELD'],
      [{ type: 'ready', version: 1.5 }, 'E_BAD_FIELD'],
      [{ type: 'ready', version: V + 1 }, 'E_VERSION'],
      [{ type: 'selectModule', federationId: 'f1', module: 'transformer.h.0.attn.c_attn' }, 'E_UNKNOWN_TYPE'],
      [{ type: 'exportReport', federationId: 'f1', format: 'html' }, 'E_UNKNOWN_TYPE'],
      [{ type: 'request', id: 1, method: 'selectModule', params: { federationId: 'f1', module: 'm' } }, 'E_UNKNOWN_METHOD'],
      [{ type: 'request', id: 1, method: 'toString', params: {} }, 'E_UNKNOWN_METHOD'],
      [{ type: 'request', id: 1.5, method: 'exportReport', params: { federationId: 'f1', format: 'html' } }, 'E_BAD_FIELD'],
      [{ type: 'request', id: 1, method: 'exportReport' }, 'E_BAD_FIELD'],
      [{ type: 'request', id: 1, method: 'exportReport', params: { federationId: 'f1', format: 'pdf' } }, 'E_BAD_FIELD'],
      [{ type: 'request', id: 1, method: 'exportReport', params: { format: 'html' } }, 'E_BAD_FIELD'],
      [{ type: 'log', level: 'debug', message: 'x' }, 'E_BAD_FIELD'],
      [{ type: 'log', level: 'info', message: 'x'.repeat(MAX_MESSAGE_STRING + 1) }, 'E_BAD_FIELD'],
    ];
    for (const [m, code] of cases) {
      const r = checkWebviewToExtension(m);
      assert.equal(r.ok ? 'ok' : r.code, code, JSON.stringify(m).slice(0, 80));
    }
  });
});
