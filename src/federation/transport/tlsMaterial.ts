/**
 * Certificates for mutual TLS, checked before they reach Node's TLS layer (which ignores a CA file
 * that holds no certificate and reports a client key that does not match its certificate only
 * once a connection is attempted), the subject a peer's certificate names, and the TLS alerts by
 * which a server refuses a client's certificate.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import { TransportError } from './types.js';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function text(pem: string | Uint8Array): string {
  return typeof pem === 'string' ? pem : Buffer.from(pem).toString('utf8');
}

/**
 * Every PEM certificate in `pem` (a CA file may hold several); throws `T_OPTIONS`, naming `what`,
 * when it holds none or one that does not parse.
 */
export function pemCertificates(pem: string | Uint8Array, what: string): X509Certificate[] {
  const blocks = text(pem).match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new TransportError('T_OPTIONS', `${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new TransportError('T_OPTIONS', `${what}: certificate ${i + 1} does not parse: ${(err as Error).message}`, { cause: err });
    }
  });
}

/**
 * Checks a client certificate and its private key (PEM): the certificate parses, the key parses
 * (unencrypted) and is the certificate's. Throws `T_OPTIONS` naming `names.cert` / `names.key`.
 */
export function checkClientCertificate(cert: string | Uint8Array, key: string | Uint8Array, names = { cert: 'the client certificate', key: 'the client key' }): void {
  const [certificate] = pemCertificates(cert, names.cert);
  const keyText = text(key);
  // Node's TLS layer cannot ask for a passphrase: an encrypted key would fail at every connect.
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyText)) {
    throw new TransportError('T_OPTIONS', `${names.key} is encrypted; give an unencrypted key (openssl pkey -in key.pem -out plain-key.pem)`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(keyText);
  } catch (err) {
    throw new TransportError('T_OPTIONS', `${names.key} is not a PEM private key: ${(err as Error).message}`, { cause: err });
  }
  if (!certificate.checkPrivateKey(privateKey)) throw new TransportError('T_OPTIONS', `${names.key} is not the private key of ${names.cert} (subject ${subjectText(certificate)})`);
}

/** `CN=alice, O=Lab`: a certificate's subject on one line, without control or format characters. */
function subjectText(certificate: X509Certificate): string {
  return certificate.subject.split('\n').join(', ').replace(/[\p{Cc}\p{Cf}]/gu, '?');
}

/**
 * The subject of the certificate the peer of `socket` presented (on a server under mutual TLS:
 * the client's, verified by then); null on a plain socket or when it presented none.
 */
export function peerCertificateSubject(socket: unknown): string | null {
  if (!(socket instanceof TLSSocket)) return null;
  const certificate = socket.getPeerX509Certificate();
  return certificate === undefined ? null : subjectText(certificate);
}

/**
 * Alerts by which a TLS server refuses the client's certificate (OpenSSL's names, as Node's error
 * codes carry them: `ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED`). Retrying with the same
 * certificate cannot succeed.
 */
const CERTIFICATE_ALERT = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(CERTIFICATE_REQUIRED|UNKNOWN_CA|BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|CERTIFICATE_UNKNOWN|ACCESS_DENIED)$/;

/** `certificate required`, `unknown ca`, …: the alert of an error by which the server refused this client's certificate; else null. */
export function certificateAlert(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  const m = typeof code === 'string' ? CERTIFICATE_ALERT.exec(code) : null;
  return m === null ? null : m[1].toLowerCase().replace(/_/g, ' ');
}
