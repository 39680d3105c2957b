// Checks of mutual-TLS material before Node's TLS layer sees it (which would ignore a CA file with
// no certificate and fail a mismatched key only at connect), and the TLS alerts by which a server
// refuses a client certificate.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { certificateAlert, checkClientCertificate, pemCertificates } from '../../../src/federation/transport/tlsMaterial.js';
import { makeTestCertificateAuthority } from '../../helpers/testCertificate.js';

describe('tlsMaterial', () => {
  test('pemCertificates reads every certificate of a bundle and names the file when there is none or one is broken', async (t) => {
    const ca = await makeTestCertificateAuthority(t, 'Bundle CA');
    if (ca === null) return;
    t.after(() => ca.dir.remove());
    const alice = ca.issueClientCertificate('alice', '/CN=alice');
    assert.deepEqual(pemCertificates(`${ca.cert}\n${alice.cert}`, 'ca.pem').map((c) => c.subject), ['CN=Bundle CA', 'CN=alice']);
    assert.deepEqual(pemCertificates(Buffer.from(ca.cert), 'ca.pem').map((c) => c.subject), ['CN=Bundle CA']);
    assert.throws(() => pemCertificates(alice.key, '--client-ca key.pem'), { code: 'T_OPTIONS', message: /^--client-ca key\.pem holds no PEM certificate/ });
    const broken = ca.cert.replace(/(-----BEGIN CERTIFICATE-----\n)..../, '$1AAAA');
    assert.throws(() => pemCertificates(`${ca.cert}${broken}`, 'ca.pem'), { code: 'T_OPTIONS', message: /^ca\.pem: certificate 2 does not parse/ });
  });

  test('checkClientCertificate accepts a certificate with its key; refuses another key, an encrypted key, a non-key', async (t) => {
    const ca = await makeTestCertificateAuthority(t, 'Key CA');
    if (ca === null) return;
    t.after(() => ca.dir.remove());
    const alice = ca.issueClientCertificate('alice', '/CN=alice/O=Lab');
    const bob = ca.issueClientCertificate('bob', '/CN=bob');
    const names = { cert: '--client-cert a.pem', key: '--client-key k.pem' };
    assert.doesNotThrow(() => checkClientCertificate(alice.cert, alice.key, names));
    assert.throws(() => checkClientCertificate(alice.cert, bob.key, names), { code: 'T_OPTIONS', message: '--client-key k.pem is not the private key of --client-cert a.pem (subject CN=alice, O=Lab)' });
    assert.throws(() => checkClientCertificate(alice.cert, alice.cert, names), { code: 'T_OPTIONS', message: /^--client-key k\.pem is not a PEM private key/ });
    assert.throws(() => checkClientCertificate(alice.key, alice.key, names), { code: 'T_OPTIONS', message: /^--client-cert a\.pem holds no PEM certificate/ });
    const encryptedPath = join(ca.dir.path, 'alice-encrypted-key.pem');
    execFileSync('openssl', ['pkey', '-in', alice.keyPath, '-out', encryptedPath, '-aes256', '-passout', 'pass:secret'], { stdio: 'ignore' });
    assert.throws(() => checkClientCertificate(alice.cert, readFileSync(encryptedPath, 'utf8'), names), { code: 'T_OPTIONS', message: /^--client-key k\.pem is encrypted/ });
  });

  test('certificateAlert names the alerts that refuse a client certificate, and only those', () => {
    assert.equal(certificateAlert({ code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' }), 'certificate required');
    assert.equal(certificateAlert({ code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' }), 'unknown ca');
    assert.equal(certificateAlert({ code: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED' }), 'certificate expired');
    assert.equal(certificateAlert({ code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' }), null, 'a handshake failure can be anything (ciphers, versions)');
    assert.equal(certificateAlert({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), null, "this client's own check of the server's certificate");
    assert.equal(certificateAlert({ code: 'ECONNRESET' }), null);
    assert.equal(certificateAlert(new Error('x')), null);
    assert.equal(certificateAlert(undefined), null);
  });
});
