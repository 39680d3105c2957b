// Mutual TLS as users run it, as separate processes with default options otherwise: `fedex host
// --cert --key --client-ca ca.pem` with the shipped model, and `fedex join` without --model (the
// base model is fetched over the same mutual-TLS connection). Two clients with certificates the CA
// signed complete three rounds and the host names each one's certificate; a join without a
// certificate stops at once with a sentence naming --client-cert; one with a certificate another CA
// signed is cut off in the handshake and told to check its certificate; a key that is not the
// certificate's is refused before connecting.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { suiteFedex, waitForOutput, type FedexRun } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { makeTestCertificate, makeTestCertificateAuthority } from '../helpers/testCertificate.js';

describe('fedex host --client-ca + fedex join --client-cert/--client-key', { timeout: 240_000 }, () => {
  const start = suiteFedex();
  const tmp = suiteTempDir('cli-mtls');

  test("clients with certificates the CA signed complete 3 rounds; no certificate, another CA's, or a wrong key are refused with clear messages", async (t) => {
    const server = await makeTestCertificate(t, 'DNS:localhost');
    if (server === null) return;
    t.after(() => server.dir.remove());
    const ca = await makeTestCertificateAuthority(t, 'FedEx Clients CA');
    const otherCa = await makeTestCertificateAuthority(t, 'Other CA');
    if (ca === null || otherCa === null) return;
    t.after(() => ca.dir.remove());
    t.after(() => otherCa.dir.remove());
    const alice = ca.issueClientCertificate('alice', '/CN=alice/O=Lab A');
    const bob = ca.issueClientCertificate('bob', '/CN=bob/O=Lab B');
    const mallory = otherCa.issueClientCertificate('mallory', '/CN=mallory');
    const tokenFile = join(tmp.path, 'token');
    await writeFile(tokenFile, 'mtls-token\n');

    // Prepare: a coordinator requiring client certificates (the shipped model, offered to clients; the default 2 clients per round).
    const host = start(['host', '--port', '0', '--rounds', '3', '--token-file', tokenFile, '--cert', server.certPath, '--key', server.keyPath, '--client-ca', ca.certPath, '--out', join(tmp.path, 'run')]);
    const [, url] = await waitForOutput(host, /clients use (wss:\/\/localhost:\d+\/)\)/);
    await waitForOutput(host, /waiting for 2 clients/);
    await waitForOutput(host, /mutual TLS: only clients presenting a certificate signed by --client-ca \S*ca\.pem/);
    await waitForOutput(host, /fedex join wss:\/\/localhost:\d+\/ .*--client-cert <their certificate> --client-key <its key>/);
    const env = { FEDEX_TOKEN: 'mtls-token' };
    const client = (name: string, ...extra: string[]): FedexRun => start(['join', url, '--data', 'task:arith', '--name', name, '--model-cache', join(tmp.path, `cache-${name}`), '--ca', server.certPath, ...extra], { env });

    // Act and assert: refusals first (the host still waits for its two clients).
    const started = Date.now();
    const without = await client('nobody').done;
    assert.equal(without.code, 1, without.stderr);
    assert.match(without.stderr, /requires a client certificate \(mutual TLS\) and refused the connection without one \(TLS alert: certificate required\)\. Give --client-cert and --client-key/);
    assert.ok(Date.now() - started < 60_000, 'not retried: a certificate is not going to appear');
    const stranger = await client('mallory', '--client-cert', mallory.certPath, '--client-key', mallory.keyPath, '--retries', '1').done;
    assert.equal(stranger.code, 1, stranger.stderr);
    assert.match(stranger.stderr, /closed the connection during the TLS handshake .*check that --client-cert \S*mallory\.pem is signed by the coordinator's --client-ca/);
    const wrongKey = await client('alice', '--client-cert', alice.certPath, '--client-key', bob.keyPath).done;
    assert.equal(wrongKey.code, 2);
    assert.match(wrongKey.stderr, /--client-key \S*bob-key\.pem is not the private key of --client-cert \S*alice\.pem \(subject CN=alice, O=Lab A\)/);
    assert.doesNotMatch(host.output(), /joined/, 'none of them joined');

    const clients = [client('alice', '--client-cert', alice.certPath, '--client-key', alice.keyPath), client('bob', '--client-cert', bob.certPath, '--client-key', bob.keyPath)];
    const [h, a, b] = await Promise.all([host.done, ...clients.map((c) => c.done)]);
    for (const c of [a, b]) {
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /base model [0-9a-f]{12}… fetched .*SHA-256 verified/);
      assert.match(c.stdout, /federation completed: 3 rounds aggregated/);
    }
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /\+ alice joined with certificate CN=alice, O=Lab A \(\d connected\)/);
    assert.match(h.stdout, /\+ bob joined with certificate CN=bob, O=Lab B \(\d connected\)/);
    assert.match(h.stdout, /round 3 closed \(all_reported\): 2 updates aggregated/);
    assert.match(h.stdout, /federation done: 3\/3 rounds aggregated/);
  });
});
