// The dashboard's export is a request with a reply: the webview's RequestClient posts it, the
// extension checks it, carries it out (exportReport.ts, real files in a temporary folder; the save
// dialog is the one thing passed in) and answers; the reply, checked on the webview's side, settles
// the request with the path written, null when the user cancelled, or a failure with a stable code.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportReport, type ChooseTarget } from '../../../src/extension/dashboard/exportReport.js';
import { checkExtensionToWebview, checkWebviewToExtension, type DashboardReply, type WebviewToExtensionMessage } from '../../../src/extension/dashboard/messages.js';
import { answerRequest } from '../../../src/extension/dashboard/requests.js';
import { FederationStore } from '../../../src/extension/state/federationStore.js';
import type { FederationEvent } from '../../../src/extension/state/federationState.js';
import { DashboardRequestFailure, RequestClient } from '../../../webview/requests.js';

const HOST_EVENTS: FederationEvent[] = [
  { type: 'listening', time: 1, url: 'ws://127.0.0.1:8765', runDir: '/runs/h', resumedFromRound: null, method: 'fedex', rounds: 2 },
  { type: 'round_started', time: 2, round: 1, sampled: ['a'], quorum: 1, deadline: 9, baseRevision: 0 },
];

/** A webview and an extension joined as the panel joins them: every message through JSON and its guard. */
function wire(store: FederationStore, chooseTarget: ChooseTarget): { readonly client: RequestClient; readonly settled: Promise<void>[]; readonly asked: string[] } {
  const settled: Promise<void>[] = [];
  const asked: string[] = [];
  const choose: ChooseTarget = (o) => {
    asked.push(o.title);
    return chooseTarget(o);
  };
  const client: RequestClient = new RequestClient((message: WebviewToExtensionMessage) => {
    const request = checkWebviewToExtension(JSON.parse(JSON.stringify(message)));
    assert.ok(request.ok && request.message.type === 'request', request.ok ? request.message.type : request.reason);
    settled.push(answerRequest(request.message, { exportReport: (params) => exportReport(store, params, choose) }, (err) => assert.fail(err as Error)).then((reply) => {
      const back = checkExtensionToWebview(JSON.parse(JSON.stringify({ type: 'reply', ...reply })));
      assert.ok(back.ok && back.message.type === 'reply', back.ok ? back.message.type : back.reason);
      assert.equal(client.settle(back.message), true);
    }));
  });
  return { client, settled, asked };
}

describe('export as a request with a reply', () => {
  test('JSON without a CLI report: the state and events are written; the reply says where', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedex-export-'));
    try {
      // prepare
      const store = new FederationStore();
      store.add({ id: 'h', kind: 'host', label: 'Hosted :8765', totalRounds: 2 });
      store.apply('h', HOST_EVENTS);
      const target = join(dir, 'report.json');
      const { client, asked } = wire(store, async () => target);
      // act
      const result = await client.request('exportReport', { federationId: 'h', format: 'json' });
      // assert
      assert.deepEqual(result, { path: target });
      assert.deepEqual(asked, ['Export the report of Hosted :8765']);
      const written = JSON.parse(await readFile(target, 'utf8')) as { federation: unknown; events: unknown };
      assert.deepEqual(written, { federation: store.get('h'), events: HOST_EVENTS });
      assert.equal(client.waiting, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("HTML: the CLI's report is copied; cancelling the dialog replies with a null path", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedex-export-'));
    try {
      const report = join(dir, 'report.html');
      await writeFile(report, '<html>report</html>');
      const store = new FederationStore();
      store.add({ id: 's', kind: 'simulation', label: 'Local simulation' });
      store.apply('s', [{ type: 'simulation_done', time: 1, reportJson: join(dir, 'report.json'), reportHtml: report }]);
      const target = join(dir, 'saved.html');
      const targets = [target, undefined];
      const { client } = wire(store, async () => targets.shift());
      assert.deepEqual(await client.request('exportReport', { federationId: 's', format: 'html' }), { path: target });
      assert.equal(await readFile(target, 'utf8'), '<html>report</html>');
      assert.deepEqual(await client.request('exportReport', { federationId: 's', format: 'html' }), { path: null });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('failures come back with their code: no HTML report (nothing asked), unknown federation, unwritable target', async () => {
    const store = new FederationStore();
    store.add({ id: 'h', kind: 'host', label: 'Hosted :8765' });
    const { client, asked, settled } = wire(store, async () => join(tmpdir(), 'no-such-folder-fedex', 'deep', 'report.json'));
    const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'resolved', (err: unknown) => (err instanceof DashboardRequestFailure ? err.code : String(err)));
    assert.equal(await code(client.request('exportReport', { federationId: 'h', format: 'html' })), 'E_NO_REPORT');
    assert.deepEqual(asked, [], 'no dialog for a report that does not exist');
    assert.equal(await code(client.request('exportReport', { federationId: 'gone', format: 'json' })), 'E_UNKNOWN_FEDERATION');
    assert.equal(await code(client.request('exportReport', { federationId: 'h', format: 'json' })), 'E_WRITE_FAILED');
    await Promise.all(settled);
  });

  test('a handler that throws something else still gets the request answered, E_INTERNAL, and the bug reported', async () => {
    const bugs: unknown[] = [];
    const reply = await answerRequest({ id: 7, method: 'exportReport', params: { federationId: 'h', format: 'json' } }, { exportReport: () => Promise.reject(new TypeError('boom')) }, (err) => bugs.push(err));
    assert.equal('error' in reply ? reply.error.code : 'result', 'E_INTERNAL');
    assert.match('error' in reply ? reply.error.message : '', /could not carry out exportReport: boom/);
    assert.equal(checkExtensionToWebview({ type: 'reply', ...reply }).ok, true);
    assert.deepEqual(bugs.map((e) => (e as Error).message), ['boom']);
  });

  test('a reply to no pending request (or of another method) settles nothing', () => {
    const posted: WebviewToExtensionMessage[] = [];
    const client = new RequestClient((m) => posted.push(m));
    void client.request('exportReport', { federationId: 'h', format: 'json' });
    const stray: DashboardReply = { id: 99, method: 'exportReport', result: { path: null } };
    assert.equal(client.settle(stray), false);
    assert.equal(client.waiting, 1);
    assert.deepEqual(posted, [{ type: 'request', id: 1, method: 'exportReport', params: { federationId: 'h', format: 'json' } }]);
  });
});
