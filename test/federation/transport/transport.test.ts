// The WebSocket transport on 127.0.0.1: binary frames only (text → 1003), the size limit (1009,
// server unharmed), dead peers found by the heartbeat, reconnect with backoff, and wss:// with a
// certificate.
import assert from 'node:assert/strict';
import { createServer, connect as netConnect, type AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { backoffDelay } from '../../../src/federation/transport/backoff.js';
import { connectTransport, connectWithRetry } from '../../../src/federation/transport/client.js';
import { createTransportServer } from '../../../src/federation/transport/server.js';
import { TransportError, type Connection, type TransportServer } from '../../../src/federation/transport/types.js';
import { makeTestCertificate } from '../../helpers/testCertificate.js';

async function serve(options: Partial<Parameters<typeof createTransportServer>[0]> = {}): Promise<{ server: TransportServer; accepted: Promise<Connection> }> {
  const server = await createTransportServer({ maxFrameBytes: 1024, heartbeatMs: 100, ...options });
  const accepted = new Promise<Connection>((resolve) => server.once('connection', resolve));
  return { server, accepted };
}

function nextFrame(c: Connection): Promise<Uint8Array> {
  return new Promise((resolve) => c.once('frame', resolve));
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('transport', { timeout: 15_000 }, () => {
  test('binary frames travel bit-exactly both ways on loopback, with byte counters', async () => {
    const { server, accepted } = await serve();
    try {
      assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+\/$/);
      const client = await connectTransport(server.url, { maxFrameBytes: 1024, heartbeatMs: 100 });
      const peer = await accepted;
      const frame = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
      const got = nextFrame(peer);
      await client.send(frame);
      assert.deepEqual(await got, frame);
      const back = nextFrame(client);
      await peer.send(frame.subarray(0, 10));
      assert.deepEqual(await back, frame.subarray(0, 10));
      assert.equal(client.stats.bytesSent, 1000);
      assert.ok(client.stats.wireBytesSent > 1000 && client.stats.wireBytesSent < 1400, `wire bytes ${client.stats.wireBytesSent}`);
      client.close();
      assert.equal((await peer.closed).cause, 'normal');
    } finally {
      await server.close();
    }
  });

  test('a text message closes with 1003; an oversized frame with 1009; the server keeps accepting', async () => {
    const { server, accepted } = await serve();
    try {
      const ws = new WebSocket(server.url);
      await new Promise((resolve) => ws.once('open', resolve));
      const peer = await accepted;
      ws.send('text');
      assert.deepEqual([(await peer.closed).code, (await peer.closed).cause], [1003, 'text_frame']);
      const big = await connectTransport(server.url, { maxFrameBytes: 1 << 20 });
      await big.send(new Uint8Array(1025)).catch(() => undefined);
      assert.equal((await big.closed).code, 1009);
      const ok = await connectTransport(server.url, { maxFrameBytes: 1024 });
      assert.ok(ok.isOpen);
      ok.terminate();
    } finally {
      await server.close();
    }
  });

  test('a peer that goes silent is terminated by the heartbeat', async () => {
    const { server, accepted } = await serve({ heartbeatMs: 50, deadAfterMs: 150 });
    try {
      // A raw TCP socket that completes the upgrade, then never answers a ping.
      const port = Number(new URL(server.url).port);
      const socket = netConnect(port, '127.0.0.1');
      socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      socket.on('error', () => undefined);
      const peer = await accepted;
      const started = Date.now();
      const info = await peer.closed;
      assert.equal(info.cause, 'heartbeat');
      assert.ok(Date.now() - started < 1000);
      socket.destroy();
    } finally {
      await server.close();
    }
  });

  test('connectWithRetry backs off until the server appears; gives up after maxAttempts; stops when aborted', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}/`;
    const retries: number[] = [];
    let server: TransportServer | undefined;
    setTimeout(() => void createTransportServer({ port, maxFrameBytes: 1024 }).then((s) => (server = s)), 250);
    const conn = await connectWithRetry(url, { maxFrameBytes: 1024 }, { initialDelayMs: 20, maxDelayMs: 100, onRetry: (a, d) => retries.push(d) });
    assert.ok(conn.isOpen && retries.length >= 2, `${retries.length} retries`);
    conn.terminate();
    await server?.close();
    await assert.rejects(connectWithRetry(url, { maxFrameBytes: 1024 }, { initialDelayMs: 1, maxAttempts: 3 }), (e: unknown) => e instanceof TransportError && e.code === 'T_CONNECT');
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    await assert.rejects(connectWithRetry(url, { maxFrameBytes: 1024, signal: abort.signal }, { initialDelayMs: 1000 }), { code: 'T_ABORTED' });
    // maxDurationMs: retries (capped backoff) for that long after the first failure, then gives up.
    const t0 = Date.now();
    const delays: number[] = [];
    await assert.rejects(connectWithRetry(url, { maxFrameBytes: 1024 }, { initialDelayMs: 50, maxDelayMs: 200, maxDurationMs: 600, onRetry: (_a, d) => delays.push(d) }), { code: 'T_CONNECT' });
    const took = Date.now() - t0;
    assert.ok(took >= 600 && took < 3000, `gave up after ${took} ms (window 600 ms)`);
    assert.ok(delays.length >= 3 && delays.every((d) => d <= 200), `capped backoff: ${delays.join(', ')}`);
  });

  test('backoff grows exponentially to its cap, with jitter in [d·(1 − jitter), d]', () => {
    assert.equal(backoffDelay(0, {}, () => 1), 500);
    assert.equal(backoffDelay(3, {}, () => 1), 4000);
    assert.equal(backoffDelay(20, {}, () => 1), 30_000);
    assert.equal(backoffDelay(3, {}, () => 0), 2000);
    assert.equal(backoffDelay(2, { jitter: 0 }, () => 0.3), 2000);
    assert.throws(() => backoffDelay(-1), { code: 'T_OPTIONS' });
  });

  test('wss:// with a certificate; a client that does not trust it cannot connect; plain HTTP gets 426', async (t) => {
    const tls = await makeTestCertificate(t, 'IP:127.0.0.1');
    if (tls === null) return;
    const { cert } = tls;
    try {
      const { server, accepted } = await serve({ tls: { cert, key: tls.key } });
      try {
        assert.match(server.url, /^wss:\/\//);
        const client = await connectTransport(server.url, { maxFrameBytes: 1024, tls: { ca: cert } });
        const got = nextFrame(await accepted);
        await client.send(new Uint8Array([1, 2, 3]));
        assert.deepEqual(await got, new Uint8Array([1, 2, 3]));
        client.close();
        await assert.rejects(connectTransport(server.url, { maxFrameBytes: 1024 }), (e: unknown) => e instanceof TransportError && e.code === 'T_CONNECT' && /self[- ]signed/i.test(e.message));
      } finally {
        await server.close();
      }
      const plain = await createTransportServer({ maxFrameBytes: 1024 });
      try {
        const res = await fetch(plain.url.replace('ws://', 'http://'));
        assert.equal(res.status, 426);
      } finally {
        await plain.close();
      }
    } finally {
      await tls.dir.remove();
    }
  });
});
