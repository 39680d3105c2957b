// Validation of the dashboard messages (src/extension/dashboard/messages.ts) in both directions:
// well-formed messages pass, malformed ones are rejected with a stable code and a reason.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkExtensionToWebview, checkWebviewToExtension, DASHBOARD_PROTOCOL_VERSION, isExtensionToWebviewMessage, isWebviewToExtensionMessage, MAX_MESSAGE_STRING,
} from '../../src/extension/dashboard/messages.js';

const federation = { id: 'f1', label: 'host on :7070', kind: 'host', live: true };
const event = { type: 'round_started', time: 1, round: 1, sampled: ['c0'], quorum: 1, deadline: 2, baseRevision: 0 };

describe('extension → webview messages', () => {
  test('well-formed messages pass', () => {
    const good = [
      { type: 'init', version: DASHBOARD_PROTOCOL_VERSION, federations: [federation], history: { f1: [event, { type: 'newer_event', time: 2 }] }, selected: null, theme: 'dark' },
      { type: 'init', version: DASHBOARD_PROTOCOL_VERSION, federations: [], history: {}, selected: 'f1', theme: 'high-contrast-light' },
      { type: 'events', federationId: 'f1', events: [event, { ...event, method: 'fedex' }] },
      { type: 'select', federationId: 'f1' },
      { type: 'federations', federations: [federation, { ...federation, id: 'f2', kind: 'simulation', live: false }] },
    ];
    for (const m of good) assert.deepEqual(checkExtensionToWebview(m), { ok: true, message: m }, m.type);
  });

  test('malformed messages are rejected with a code', () => {
    const cases: [unknown, string, RegExp][] = [
      [null, 'E_NOT_OBJECT', /not an object/],
      [[{ type: 'select' }], 'E_NOT_OBJECT', /not an object/],
      [{ type: 'ready', version: 1 }, 'E_UNKNOWN_TYPE', /"ready"/],
      [{ type: 'toString' }, 'E_UNKNOWN_TYPE', /toString/],
      [{ federationId: 'f1' }, 'E_UNKNOWN_TYPE', /null/],
      [{ type: 'select', federationId: '' }, 'E_BAD_FIELD', /federationId/],
      [{ type: 'events', federationId: 'f1', events: {} }, 'E_BAD_FIELD', /events is not an array/],
      [{ type: 'events', federationId: 'f1', events: [event, { type: 'x' }] }, 'E_BAD_FIELD', /events\[1\]/],
      [{ type: 'events', federationId: 'f1', events: [{ ...event, time: Number.NaN }] }, 'E_BAD_FIELD', /events\[0\]/],
      [{ type: 'events', federationId: 'f1', events: [{ ...event, method: 3 }] }, 'E_BAD_FIELD', /events\[0\]/],
      [{ type: 'federations', federations: [{ ...federation, kind: 'pirate' }] }, 'E_BAD_FIELD', /federations\[0\]/],
      [{ type: 'federations', federations: [{ ...federation, label: 'x'.repeat(MAX_MESSAGE_STRING + 1) }] }, 'E_BAD_FIELD', /federations\[0\]/],
      [{ type: 'init', version: 1, federations: [], history: [], selected: null, theme: 'dark' }, 'E_BAD_FIELD', /history/],
      [{ type: 'init', version: 1, federations: [], history: { f1: [{}] }, selected: null, theme: 'dark' }, 'E_BAD_FIELD', /history\["f1"\]\[0\]/],
      [{ type: 'init', version: 1, federations: [], history: {}, selected: null, theme: 'sepia' }, 'E_BAD_FIELD', /theme/],
      [{ type: 'init', version: 1, federations: [], history: {}, theme: 'dark' }, 'E_BAD_FIELD', /selected/],
      [{ type: 'init', version: 99, federations: [], history: {}, selected: null, theme: 'dark' }, 'E_VERSION', /version 99/],
    ];
    for (const [m, code, reason] of cases) {
      const r = checkExtensionToWebview(m);
      assert.equal(r.ok, false, JSON.stringify(m));
      if (!r.ok) {
        assert.equal(r.code, code, JSON.stringify(m));
        assert.match(r.reason, reason);
      }
      assert.equal(isExtensionToWebviewMessage(m), false);
    }
  });
});

describe('webview → extension messages', () => {
  test('well-formed messages pass', () => {
    const good = [
      { type: 'ready', version: DASHBOARD_PROTOCOL_VERSION },
      { type: 'selectModule', federationId: 'f1', module: 'transformer.h.0.attn.c_attn' },
      { type: 'exportReport', federationId: 'f1', format: 'html' },
      { type: 'exportReport', federationId: 'f1', format: 'json' },
      { type: 'log', level: 'warn', message: 'something' },
    ];
    for (const m of good) assert.equal(isWebviewToExtensionMessage(m), true, m.type);
  });

  test('malformed messages are rejected with a code', () => {
    const cases: [unknown, string][] = [
      ['ready', 'E_NOT_OBJECT'],
      [{ type: 'init' }, 'E_UNKNOWN_TYPE'],
      [{ type: 'ready' }, 'E_BAD_FIELD'],
      [{ type: 'ready', version: 1.5 }, 'E_BAD_FIELD'],
      [{ type: 'ready', version: DASHBOARD_PROTOCOL_VERSION + 1 }, 'E_VERSION'],
      [{ type: 'selectModule', federationId: 'f1' }, 'E_BAD_FIELD'],
      [{ type: 'selectModule', federationId: 'f1', module: 7 }, 'E_BAD_FIELD'],
      [{ type: 'exportReport', federationId: 'f1', format: 'pdf' }, 'E_BAD_FIELD'],
      [{ type: 'exportReport', format: 'html' }, 'E_BAD_FIELD'],
      [{ type: 'log', level: 'debug', message: 'x' }, 'E_BAD_FIELD'],
      [{ type: 'log', level: 'info', message: 'x'.repeat(MAX_MESSAGE_STRING + 1) }, 'E_BAD_FIELD'],
    ];
    for (const [m, code] of cases) {
      const r = checkWebviewToExtension(m);
      assert.equal(r.ok ? 'ok' : r.code, code, JSON.stringify(m).slice(0, 80));
    }
  });
});
