// Mutual TLS on 127.0.0.1: a server with `tls.clientCa` lets through a client whose certificate that
// CA signed (and names its subject), and ends in the TLS handshake, before any HTTP request is
// read, a client with no certificate (T_CERTIFICATE: not retried) or one another CA signed.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { describe, test, type TestContext } from 'node:test';
import { connectTransport, connectWithRetry } from '../../../src/federation/transport/client.js';
import { createTransportServer } from '../../../src/federation/transport/server.js';
import { TransportError, type Connection, type TransportServer } from '../../../src/federation/transport/types.js';
import { makeTestCertificate, makeTestCertificateAuthority, type TestCertificate, type TestCertificateAuthority } from '../../helpers/testCertificate.js';

interface Pki {
  readonly server: TestCertificate;
  readonly ca: TestCertificateAuthority;
  readonly alice: TestCertificate;
  readonly otherCa: TestCertificateAuthority;
  /** Signed by `otherCa`, not by `ca`. */
  readonly mallory: TestCertificate;
}

/** A server certificate for 127.0.0.1, a client CA with alice's certificate, another CA with mallory's; null when skipped. */
async function makePki(t: TestContext): Promise<Pki | null> {
  const server = await makeTestCertificate(t, 'IP:127.0.0.1');
  if (server === null) return null;
  t.after(() => server.dir.remove());
  const ca = await makeTestCertificateAuthority(t, 'FedEx Test Client CA');
  const otherCa = await makeTestCertificateAuthority(t, 'Other CA');
  if (ca === null || otherCa === null) return null;
  t.after(() => ca.dir.remove());
  t.after(() => otherCa.dir.remove());
  return { server, ca, alice: ca.issueClientCertificate('alice', '/CN=alice/O=Lab'), otherCa, mallory: otherCa.issueClientCertificate('mallory', '/CN=mallory') };
}

/** A wss:// server on 127.0.0.1 requiring client certificates signed by `pki.ca`, and every connection it hands out. */
async function serveMutual(pki: Pki): Promise<{ server: TransportServer; accepted: Connection[] }> {
  const server = await createTransportServer({ maxFrameBytes: 1024, heartbeatMs: 100, tls: { cert: pki.server.cert, key: pki.server.key, clientCa: pki.ca.cert } });
  const accepted: Connection[] = [];
  server.on('connection', (c) => accepted.push(c));
  return { server, accepted };
}

/** Runs `body` with a fresh PKI (makePki) and a server requiring its client certificates (serveMutual), closed after; nothing when makePki skips. */
async function withMutualServer(t: TestContext, body: (pki: Pki, server: TransportServer, accepted: Connection[]) => Promise<void>): Promise<void> {
  const pki = await makePki(t);
  if (pki === null) return;
  const { server, accepted } = await serveMutual(pki);
  try {
    await body(pki, server, accepted);
  } finally {
    await server.close();
  }
}

/** The HTTP status a plain HTTPS GET gets (426 from the server's HTTP layer), or the error that ended it. */
function httpsStatus(url: string, tls: { ca: string; cert?: string; key?: string }): Promise<number | Error> {
  return new Promise((resolve) => {
    const req = request(url.replace('wss://', 'https://'), { ...tls, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', resolve);
    req.end();
  });
}

describe('mutual TLS (tls.clientCa)', { timeout: 30_000 }, () => {
  test('a client certificate signed by the CA connects, frames travel, and the server knows its subject', async (t) => {
    await withMutualServer(t, async (pki, server, accepted) => {
      const client = await connectTransport(server.url, { maxFrameBytes: 1024, tls: { ca: pki.server.cert, cert: pki.alice.cert, key: pki.alice.key } });
      await new Promise((resolve) => setImmediate(resolve));
      const [peer] = accepted;
      assert.equal(peer.certificateSubject, 'CN=alice, O=Lab');
      const got = new Promise<Uint8Array>((resolve) => peer.once('frame', resolve));
      await client.send(new Uint8Array([7, 8, 9]));
      assert.deepEqual(await got, new Uint8Array([7, 8, 9]));
      assert.equal(client.certificateSubject, 'CN=127.0.0.1', "the client's peer is the server: its certificate");
      client.close();
      assert.equal((await peer.closed).cause, 'normal');
    });
  });

  test('without a client certificate the TLS handshake is refused (T_CERTIFICATE, not retried); no request reaches the server', async (t) => {
    await withMutualServer(t, async (pki, server, accepted) => {
      const retries: number[] = [];
      await assert.rejects(
        connectWithRetry(server.url, { maxFrameBytes: 1024, tls: { ca: pki.server.cert } }, { initialDelayMs: 1, maxAttempts: 5, onRetry: (a) => retries.push(a) }),
        (e: unknown) => e instanceof TransportError && e.code === 'T_CERTIFICATE' && /requires a client certificate .*TLS alert: certificate required/.test(e.message),
      );
      assert.deepEqual(retries, [], 'retrying without a certificate cannot succeed');
      // The HTTP layer never answers (it would say 426 to a GET): the TLS layer ended the connection.
      const plain = await httpsStatus(server.url, { ca: pki.server.cert });
      assert.ok(plain instanceof Error, `the server answered HTTP ${String(plain)}`);
      assert.equal(await httpsStatus(server.url, { ca: pki.server.cert, cert: pki.alice.cert, key: pki.alice.key }), 426);
      assert.equal(accepted.length, 0);
    });
  });

  test('a certificate from another CA, or a self-signed one, is cut off in the TLS handshake', async (t) => {
    await withMutualServer(t, async (pki, server, accepted) => {
      for (const stranger of [pki.mallory, pki.server]) {
        await assert.rejects(
          connectTransport(server.url, { maxFrameBytes: 1024, tls: { ca: pki.server.cert, cert: stranger.cert, key: stranger.key } }),
          (e: unknown) => e instanceof TransportError && (e.code === 'T_CONNECT' || e.code === 'T_CERTIFICATE'),
        );
        const plain = await httpsStatus(server.url, { ca: pki.server.cert, cert: stranger.cert, key: stranger.key });
        assert.ok(plain instanceof Error, `the server answered HTTP ${String(plain)} to a certificate its CA did not sign`);
      }
      assert.equal(accepted.length, 0);
      // The server is unharmed: alice still gets in.
      const ok = await connectTransport(server.url, { maxFrameBytes: 1024, tls: { ca: pki.server.cert, cert: pki.alice.cert, key: pki.alice.key } });
      assert.ok(ok.isOpen);
      ok.terminate();
    });
  });

  test('without clientCa no certificate is asked for: certificateSubject is null', async (t) => {
    const pki = await makePki(t);
    if (pki === null) return;
    const server = await createTransportServer({ maxFrameBytes: 1024, tls: { cert: pki.server.cert, key: pki.server.key } });
    try {
      const accepted = new Promise<Connection>((resolve) => server.once('connection', resolve));
      const client = await connectTransport(server.url, { maxFrameBytes: 1024, tls: { ca: pki.server.cert, cert: pki.alice.cert, key: pki.alice.key } });
      assert.equal((await accepted).certificateSubject, null);
      client.terminate();
    } finally {
      await server.close();
    }
  });

  test('a client CA without a certificate, a lone client certificate, a key of another certificate: T_OPTIONS at once', async (t) => {
    const pki = await makePki(t);
    if (pki === null) return;
    await assert.rejects(createTransportServer({ maxFrameBytes: 1024, tls: { cert: pki.server.cert, key: pki.server.key, clientCa: pki.alice.key } }), { code: 'T_OPTIONS', message: /clientCa holds no PEM certificate/ });
    const { server } = await serveMutual(pki);
    try {
      await assert.rejects(connectTransport(server.url, { maxFrameBytes: 1024, tls: { cert: pki.alice.cert } }), { code: 'T_OPTIONS', message: /go together/ });
      const retries: number[] = [];
      await assert.rejects(
        connectWithRetry(server.url, { maxFrameBytes: 1024, tls: { ca: pki.server.cert, cert: pki.alice.cert, key: pki.mallory.key } }, { initialDelayMs: 1, maxAttempts: 5, onRetry: (a) => retries.push(a) }),
        { code: 'T_OPTIONS', message: /the client key is not the private key of the client certificate \(subject CN=alice, O=Lab\)/ },
      );
      assert.deepEqual(retries, []);
    } finally {
      await server.close();
    }
  });
});
