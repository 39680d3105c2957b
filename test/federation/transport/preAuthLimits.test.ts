// The transport's limits before authentication on loopback, sources 127.0.0.x: the small message
// limit (read from frame headers, lifted by markAuthenticated), the caps on connections in total and
// per address (503 at the upgrade), the upgrade deadline; and the pure pieces (frame scanner, address keys).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { FrameLengthScanner } from '../../../src/federation/transport/frameGuard.js';
import { addressKey, addressKeyOfRemote, markAuthenticated, type PreAuthOptions, type Refusal } from '../../../src/federation/transport/preAuth.js';
import { createTransportServer } from '../../../src/federation/transport/server.js';
import type { Connection, TransportServer } from '../../../src/federation/transport/types.js';
import { frameHeader, openTcp } from './rawWebSocket.js';
import { makeTestCertificate } from '../../helpers/testCertificate.js';

interface Served {
  readonly server: TransportServer;
  readonly accepted: Connection[];
  readonly refusals: Refusal[];
}

async function serve(preAuth: Partial<PreAuthOptions> = {}, tls?: { cert: string; key: string }): Promise<Served> {
  const refusals: Refusal[] = [];
  const server = await createTransportServer({
    maxFrameBytes: 1 << 20,
    heartbeatMs: 5_000,
    ...(tls !== undefined ? { tls } : {}),
    preAuth: { maxConnections: 64, maxPendingPerAddress: 8, maxFrameBytes: 4096, upgradeTimeoutMs: 5_000, onRefused: (r) => refusals.push(r), ...preAuth },
  });
  const accepted: Connection[] = [];
  server.on('connection', (c) => accepted.push(c));
  return { server, accepted, refusals };
}

/** Opens a ws client from `localAddress`: resolves with it once open, or with the HTTP status that refused it. */
async function wsFrom(url: string, localAddress: string, ca?: string): Promise<{ ws: WebSocket; status: 101 } | { status: number; retryAfter: string | undefined }> {
  const ws = new WebSocket(url, { localAddress, perMessageDeflate: false, ...(ca !== undefined ? { ca } : {}) });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** Runs `body` on a fresh server (serve); afterwards terminates the clients it put in `open` and closes the server abruptly. */
async function withServed(preAuth: Partial<PreAuthOptions>, body: (served: Served, open: WebSocket[]) => Promise<void>): Promise<void> {
  const served = await serve(preAuth);
  const open: WebSocket[] = [];
  try {
    await body(served, open);
  } finally {
    for (const ws of open) ws.terminate();
    await served.server.close({ abrupt: true });
  }
}

/** Opens a ws client from each of `addresses` in turn, into `open`; each must open. */
async function openFrom(url: string, addresses: readonly string[], open: WebSocket[]): Promise<void> {
  for (const [i, address] of addresses.entries()) {
    const r = await wsFrom(url, address);
    assert.ok('ws' in r, `connection ${i} should open`);
    open.push(r.ws);
  }
}

/** `p`, or a failure naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(what: string, cond: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('transport limits before authentication', { timeout: 30_000 }, () => {
  test('a message over the small limit closes the connection (1009) from its header; markAuthenticated lifts the limit', { timeout: 6_000 }, async () => {
    const { server, accepted, refusals } = await serve();
    try {
      // Prepare: two clients; one will authenticate.
      const a = await wsFrom(server.url, '127.0.0.2');
      const b = await wsFrom(server.url, '127.0.0.2');
      assert.ok('ws' in a && 'ws' in b);
      await until('both accepted', () => accepted.length === 2);
      const frames: number[] = [];
      accepted[1].on('frame', (f) => frames.push(f.length));
      // Act: a small message passes before authentication; 100 KiB does not; after markAuthenticated it does.
      b.ws.send(Buffer.alloc(1000));
      await until('the small message', () => frames.length === 1);
      const closed = once(a.ws, 'close');
      a.ws.send(Buffer.alloc(100 * 1024));
      markAuthenticated(accepted[1]);
      b.ws.send(Buffer.alloc(100 * 1024));
      // Assert
      const [code] = (await within(closed, 4_000, 'the close of the oversized sender')) as [number];
      assert.equal(code, 1009);
      assert.deepEqual(refusals.map((r) => r.reason), ['frame_too_large']);
      assert.match(refusals[0].message, /102400 bytes before authentication exceeds the limit of 4096/);
      await until('the large message after authentication', () => frames.length === 2);
      assert.deepEqual(frames, [1000, 100 * 1024]);
      b.ws.close();
    } finally {
      await server.close({ abrupt: true });
    }
  });

  test('per address: beyond maxPendingPerAddress the upgrade gets 503 at once; other addresses and authenticated peers do not count', { timeout: 6_000 }, async () => {
    await withServed({ maxPendingPerAddress: 3 }, async ({ server, accepted, refusals }, open) => {
      // Prepare: three pending connections from 127.0.0.2.
      await openFrom(server.url, ['127.0.0.2', '127.0.0.2', '127.0.0.2'], open);
      // Act + assert: the fourth is refused promptly; 127.0.0.3 is not.
      const t0 = performance.now();
      const fourth = await wsFrom(server.url, '127.0.0.2');
      assert.equal(fourth.status, 503);
      assert.ok(!('ws' in fourth) && fourth.retryAfter === '1');
      assert.ok(performance.now() - t0 < 1_000, 'refused promptly');
      const other = await wsFrom(server.url, '127.0.0.3');
      assert.ok('ws' in other);
      open.push(other.ws);
      assert.equal(refusals.length, 1);
      assert.equal(refusals[0].reason, 'too_many_pending');
      // One of 127.0.0.2's peers authenticates: that frees a place for the address.
      await until('four accepted', () => accepted.length === 4);
      markAuthenticated(accepted[0]);
      const fifth = await wsFrom(server.url, '127.0.0.2');
      assert.ok('ws' in fifth);
      open.push(fifth.ws);
    });
  });

  test('in total: beyond maxConnections every address is refused, authenticated peers counted; a closed one frees its place', { timeout: 6_000 }, async () => {
    await withServed({ maxConnections: 4 }, async ({ server, accepted, refusals }, open) => {
      await openFrom(server.url, ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13'], open);
      await until('four accepted', () => accepted.length === 4);
      for (const c of accepted) markAuthenticated(c);
      const fifth = await wsFrom(server.url, '127.0.0.20');
      assert.equal(fifth.status, 503);
      assert.equal(refusals.at(-1)?.reason, 'too_many_connections');
      open.shift()!.terminate();
      await until('the place freed', () => accepted.filter((c) => c.isOpen).length === 3);
      // The server sees the TCP close shortly after the connection's close event.
      let again = await wsFrom(server.url, '127.0.0.20');
      for (let i = 0; i < 20 && !('ws' in again); i++) {
        await new Promise((r) => setTimeout(r, 50));
        again = await wsFrom(server.url, '127.0.0.20');
      }
      assert.ok('ws' in again);
      open.push(again.ws);
    });
  });

  test('a TCP connection that does not upgrade in time is destroyed, and counts against its address meanwhile', { timeout: 6_000 }, async () => {
    const { server, refusals } = await serve({ maxPendingPerAddress: 1, upgradeTimeoutMs: 300 });
    try {
      const idle = await openTcp(server.url, '127.0.0.4');
      const t0 = performance.now();
      const idleClosed = once(idle, 'close');
      await new Promise((r) => setTimeout(r, 50));
      const meanwhile = await wsFrom(server.url, '127.0.0.4');
      assert.equal(meanwhile.status, 503);
      await idleClosed;
      const waited = performance.now() - t0;
      assert.ok(waited >= 250 && waited < 2_000, `destroyed after ${waited.toFixed(0)} ms`);
      assert.deepEqual(refusals.map((r) => r.reason), ['too_many_pending', 'upgrade_timeout']);
      const after = await wsFrom(server.url, '127.0.0.4');
      assert.ok('ws' in after);
      after.ws.terminate();
    } finally {
      await server.close({ abrupt: true });
    }
  });

  test('over wss:// the same: the TLS socket is matched to its TCP connection for the counts, the deadline and the frame limit', { timeout: 8_000 }, async (t) => {
    const tls = await makeTestCertificate(t, 'IP:127.0.0.1');
    if (tls === null) return;
    const { cert } = tls;
    try {
      const { server, refusals } = await serve({ maxPendingPerAddress: 1, upgradeTimeoutMs: 300 }, { cert, key: tls.key });
      try {
        // Prepare: one pending wss connection from 127.0.0.5.
        const first = await wsFrom(server.url, '127.0.0.5', cert);
        assert.ok('ws' in first);
        // Act + assert: it outlives the upgrade deadline (cleared at its upgrade), blocks a second one, and is cut off by a large message.
        await new Promise((r) => setTimeout(r, 600));
        assert.equal(first.ws.readyState, WebSocket.OPEN);
        assert.equal((await wsFrom(server.url, '127.0.0.5', cert)).status, 503);
        const closed = once(first.ws, 'close');
        first.ws.send(Buffer.alloc(100 * 1024));
        const [code] = (await within(closed, 4_000, 'the close of the oversized sender')) as [number];
        assert.equal(code, 1009);
        assert.deepEqual(refusals.map((r) => r.reason), ['too_many_pending', 'frame_too_large']);
        const again = await wsFrom(server.url, '127.0.0.5', cert);
        assert.ok('ws' in again, 'its place is free once it closed');
        again.ws.terminate();
      } finally {
        await server.close({ abrupt: true });
      }
    } finally {
      await tls.dir.remove();
    }
  });
});

describe('FrameLengthScanner', () => {
  const feedBytewise = (s: FrameLengthScanner, bytes: Buffer): number | null => {
    for (const b of bytes) {
      const r = s.scan(Buffer.from([b]));
      if (r !== null) return r;
    }
    return null;
  };

  test('follows frames of all three length forms, split anywhere, and sums fragments of one message', () => {
    const s = new FrameLengthScanner(70_000);
    const stream = Buffer.concat([
      frameHeader(5),
      Buffer.alloc(5),
      frameHeader(300),
      Buffer.alloc(300),
      frameHeader(66_000),
      Buffer.alloc(66_000),
      // A fragmented message: 40 000 + ping (not counted) + 29 000 = 69 000 ≤ 70 000.
      frameHeader(40_000, 0x2, false),
      Buffer.alloc(40_000),
      frameHeader(4, 0x9),
      Buffer.alloc(4),
      frameHeader(29_000, 0x0, true),
      Buffer.alloc(29_000),
    ]);
    assert.equal(feedBytewise(s, stream), null);
    assert.equal(s.scan(stream), null, 'the same stream in one chunk');
    // The next message: 40 000 + 40 000 continuation passes the limit at the second header.
    assert.equal(s.scan(Buffer.concat([frameHeader(40_000, 0x2, false), Buffer.alloc(40_000), frameHeader(40_000, 0x0, true)])), 80_000);
  });

  test('a 64-bit length is caught from the header alone, also beyond 2^53; an unmasked header is read too', () => {
    assert.equal(new FrameLengthScanner(65_536).scan(frameHeader(60 * 1024 * 1024)), 60 * 1024 * 1024);
    const huge = Buffer.from([0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert.ok((new FrameLengthScanner(65_536).scan(huge) ?? 0) > 2 ** 60);
    assert.equal(new FrameLengthScanner(100).scan(Buffer.from([0x82, 126, 0x01, 0x00])), 256);
  });
});

describe('address keys', () => {
  test('IPv4 as it is, IPv4-mapped IPv6 as IPv4, IPv6 by /64 whatever its spelling', () => {
    assert.equal(addressKey('127.0.0.2'), '127.0.0.2');
    assert.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(addressKey('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
    assert.equal(addressKey('2001:0db8:0000:0001:ffff:0:0:2'), '2001:db8:0:1::/64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKeyOfRemote('127.0.0.2:5555'), '127.0.0.2');
    assert.equal(addressKeyOfRemote('2001:db8::1:443'), '2001:db8:0:0::/64');
  });
});
