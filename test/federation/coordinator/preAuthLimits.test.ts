// The attacks of issue 12 before authentication, against a real coordinator on loopback, with the
// attacker on other source addresses (127.0.0.2, …; the honest client on 127.0.0.1): a 60 MiB frame
// before hello, floods of idle connections per address and in total, token guessing, and the log
// volume of rejected connections.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { encodeMessage, tryDecodeMessage } from '../../../src/federation/protocol/codec.js';
import type { ParamsOf } from '../../../src/federation/protocol/messages.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import type { CoordinatorConfig } from '../../../src/federation/coordinator/config.js';
import type { CoordinatorEventMap } from '../../../src/federation/coordinator/events.js';
import { frameHeader, rawUpgrade, streamPayload } from '../transport/rawWebSocket.js';
import { BASE, coordinatorConfig, tempRunDir, TOKEN } from './fixtures.js';
import { RawPeer } from './rawPeer.js';

const MiB = 1024 * 1024;
type Logged = { type: 'client_rejected' | 'protocol_error'; remote: string; code: string; message: string };

async function withCoordinator(overrides: Partial<CoordinatorConfig>, body: (c: Coordinator, url: string, logged: Logged[]) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempRunDir();
  const c = await Coordinator.create(coordinatorConfig(dir, overrides));
  const logged: Logged[] = [];
  c.on('client_rejected', (e: CoordinatorEventMap['client_rejected'][0]) => logged.push({ type: 'client_rejected', ...e }));
  c.on('protocol_error', (e: CoordinatorEventMap['protocol_error'][0]) => logged.push({ type: 'protocol_error', remote: e.remote, code: e.code, message: e.message }));
  try {
    await body(c, await c.start(), logged);
  } finally {
    if (!c.killed) await c.kill();
    await cleanup();
  }
}

function hello(overrides: Partial<ParamsOf<'hello'>> = {}): Uint8Array {
  return encodeMessage({
    method: 'hello',
    params: {
      protocolMajor: 1,
      protocolMinor: 1,
      token: TOKEN,
      clientName: 'peer',
      device: 'cpu',
      baseModelHash: BASE.hash,
      capabilities: { uplinkDtypes: ['float32'], factoredResidual: true, modelTransfer: false, maxFrameBytes: 1 << 24 },
      ...overrides,
    },
  });
}

/** A WebSocket from `localAddress`, once open; or the HTTP status that refused it. */
function openFrom(url: string, localAddress: string): Promise<{ ws: WebSocket } | { status: number }> {
  const ws = new WebSocket(url, { localAddress, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

type Answer = { method: 'welcome' } | { method: 'reject'; code: string; retryAfterMs: number | undefined } | { method: 'closed' } | { method: 'refused'; status: number };

/** Connects from `localAddress`, sends `frame`, and resolves with the coordinator's first answer. */
async function knock(url: string, localAddress: string, frame: Uint8Array): Promise<Answer> {
  const opened = await openFrom(url, localAddress);
  if (!('ws' in opened)) return { method: 'refused', status: opened.status };
  const { ws } = opened;
  const answer = new Promise<Answer>((resolve) => {
    ws.on('message', (data: Buffer) => {
      const r = tryDecodeMessage(new Uint8Array(data), { receiver: 'client' });
      if (!r.ok) return;
      if (r.message.method === 'welcome') resolve({ method: 'welcome' });
      if (r.message.method === 'reject') resolve({ method: 'reject', code: r.message.params.code, retryAfterMs: r.message.params.retryAfterMs });
    });
    ws.once('close', () => resolve({ method: 'closed' }));
  });
  ws.send(frame);
  const a = await answer;
  ws.terminate();
  return a;
}

async function honestJoin(url: string): Promise<void> {
  const peer = await RawPeer.connect(url);
  await peer.hello({ clientId: 'honest' });
  await peer.next('welcome');
  peer.conn.close();
}

describe('coordinator limits before authentication', { timeout: 60_000 }, () => {
  test('a 60 MiB frame before hello is cut off after the small limit, without the coordinator buffering it', async () => {
    // The heartbeat is long so that only the frame limit can stop the attacker.
    await withCoordinator({ limits: { heartbeatMs: 5_000, helloTimeoutMs: 10_000 } }, async (_c, url, logged) => {
      // Prepare
      const { socket, status } = await rawUpgrade(url, '127.0.0.2');
      assert.equal(status, 101);
      // The coordinator resets the socket: wait for 'close', not for 'error'.
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const base = process.memoryUsage().arrayBuffers;
      let peak = base;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 5);
      // Act: announce 60 MiB, then push the payload as fast as the coordinator reads it.
      let sent: number;
      try {
        socket.write(frameHeader(60 * MiB));
        sent = await streamPayload(socket, 60 * MiB, 10_000);
        await closed;
      } finally {
        clearInterval(sampler);
      }
      // Assert: closed before the frame was through, and at most a few socket buffers in memory.
      assert.ok(peak - base < 8 * MiB, `ArrayBuffer memory grew by ${((peak - base) / MiB).toFixed(1)} MiB`);
      assert.ok(sent < 60 * MiB, `the coordinator stopped reading: ${(sent / MiB).toFixed(1)} MiB handed to the kernel`);
      const refusal = logged.find((e) => e.remote.startsWith('127.0.0.2:'));
      assert.equal(refusal?.code, 'E_TOO_LARGE');
      assert.match(refusal.message, /62914560 bytes before authentication exceeds the limit of 65536 bytes/);
      await honestJoin(url);
    });
  });

  test('idle connections from one address are capped at 32 (503 beyond), an honest client joins meanwhile, and idle ones go at the hello timeout', async () => {
    await withCoordinator({ limits: { heartbeatMs: 200, helloTimeoutMs: 1_500 } }, async (_c, url, logged) => {
      // Act: 40 idle connections from 127.0.0.2 at once.
      const t0 = performance.now();
      const flood = await Promise.all(Array.from({ length: 40 }, () => openFrom(url, '127.0.0.2')));
      const openMs = performance.now() - t0;
      const idle = flood.flatMap((r) => ('ws' in r ? [r.ws] : []));
      const closed = idle.map((ws) => once(ws, 'close'));
      // Assert: exactly the cap got in, the rest were refused at once; the honest client is not affected.
      assert.equal(idle.length, 32);
      assert.deepEqual(flood.flatMap((r) => ('status' in r ? [r.status] : [])), Array(8).fill(503));
      assert.ok(openMs < 1_500, `the flood was answered in ${openMs.toFixed(0)} ms`);
      await honestJoin(url);
      // The idle ones are closed at the hello timeout; then the address may connect again.
      await Promise.all(closed);
      assert.ok(performance.now() - t0 < 5_000);
      const again = await openFrom(url, '127.0.0.2');
      assert.ok('ws' in again);
      again.ws.terminate();
      // 8 refusals + 32 hello timeouts, of which 10 are logged one by one.
      assert.equal(logged.filter((e) => e.remote.startsWith('127.0.0.2')).length, 10);
    });
  });

  test('in total: beyond maxConnections everyone waits, until idle connections are closed at the hello timeout', async () => {
    await withCoordinator({ minClients: 2, maxClients: 2, limits: { heartbeatMs: 200, helloTimeoutMs: 800, maxConnections: 6 } }, async (_c, url) => {
      // Prepare: six idle connections from six addresses fill the coordinator.
      const idle: WebSocket[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await openFrom(url, `127.0.0.${3 + i}`);
        assert.ok('ws' in r);
        idle.push(r.ws);
      }
      const t0 = performance.now();
      // Act + assert: a seventh address is refused, so is the honest client at first; it gets in once they are gone.
      assert.deepEqual(await openFrom(url, '127.0.0.9'), { status: 503 });
      await assert.rejects(RawPeer.connect(url), /HTTP 503/);
      let joinedAfter = NaN;
      for (let attempt = 0; attempt < 40 && Number.isNaN(joinedAfter); attempt++) {
        try {
          await honestJoin(url);
          joinedAfter = performance.now() - t0;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.ok(joinedAfter < 4_000, `joined after ${joinedAfter.toFixed(0)} ms`);
      assert.ok(idle.every((ws) => ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING));
    });
  });

  test('token guessing from one address is throttled to a few token checks; hellos from other addresses are not', async () => {
    await withCoordinator({}, async (_c, url) => {
      // Act: guess for 2 s from 127.0.0.2, one connection per guess; an honest client joins halfway.
      const answers: Answer[] = [];
      const t0 = performance.now();
      let honest: Promise<void> | undefined;
      while (performance.now() - t0 < 2_000) {
        answers.push(await knock(url, '127.0.0.2', hello({ token: `guess-${answers.length}-0123456789` })));
        if (honest === undefined && performance.now() - t0 > 1_000) honest = honestJoin(url);
      }
      const seconds = (performance.now() - t0) / 1000;
      await honest;
      // Assert: every guess refused: the first few compared (E_AUTH, no retryAfterMs), the rest told to wait (E_THROTTLED, retryable).
      assert.ok(answers.length >= 20, `only ${answers.length} guesses were made`);
      assert.ok(answers.every((a) => a.method === 'reject' && (a.retryAfterMs === undefined ? a.code === 'E_AUTH' : a.code === 'E_THROTTLED')));
      const checked = answers.filter((a) => a.method === 'reject' && a.retryAfterMs === undefined).length;
      assert.ok(checked >= 5 && checked <= 7, `${checked} token checks of ${answers.length} guesses`);
      assert.ok(checked / seconds <= 4, `${(checked / seconds).toFixed(1)} token checks per second`);
      const waits = answers.flatMap((a) => (a.method === 'reject' && a.retryAfterMs !== undefined ? [a.retryAfterMs] : []));
      assert.ok(waits.every((w) => w > 0 && w <= 2_000), `retryAfterMs ${Math.min(...waits)}..${Math.max(...waits)}`);
    });
  });

  test('rejections from one address are logged 10 times a minute, the rest in one summary (events.jsonl and the event stream)', async () => {
    await withCoordinator({}, async (c, url, logged) => {
      // Act: 90 bad connections from 127.0.0.2: wrong tokens, garbage frames, wrong versions.
      const answers: Answer[] = [];
      for (let i = 0; i < 30; i++) {
        answers.push(await knock(url, '127.0.0.2', hello({ token: `wrong-${i}-0123456789` })));
        answers.push(await knock(url, '127.0.0.2', new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])));
        answers.push(await knock(url, '127.0.0.2', hello({ protocolMajor: 2 })));
      }
      await honestJoin(url);
      // Assert: every attempt was refused, 10 logged one by one, then (at the end of the minute) one summary of the other 80.
      assert.ok(answers.every((a) => a.method === 'reject'), JSON.stringify(answers.find((a) => a.method !== 'reject')));
      const fromAttacker = (): Logged[] => logged.filter((e) => e.remote.startsWith('127.0.0.2'));
      assert.equal(fromAttacker().length, 10);
      c.admissionLimits.flushSummaries();
      assert.equal(fromAttacker().length, 11);
      const summary = fromAttacker()[10];
      assert.equal(summary.type, 'client_rejected');
      assert.equal(summary.remote, '127.0.0.2');
      assert.match(summary.message, /^80 more rejected from 127\.0\.0\.2 in the last minute \((E_[A-Z_]+ ×\d+, )*E_THROTTLED ×\d+.*\); not logged one by one$/);
      await c.kill();
      const lines = (await readFile(c.store.eventsPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; remote?: string });
      assert.equal(lines.filter((l) => (l.type === 'client_rejected' || l.type === 'protocol_error') && l.remote?.startsWith('127.0.0.2')).length, 11);
    });
  });
});
