/**
 * Mutual TLS on the command line: `fedex host --client-ca ca.pem` (only clients with a certificate
 * that CA signed get through the TLS handshake) and `fedex join --client-cert cert.pem --client-key
 * key.pem`. The files are read and checked before anything starts, and a coordinator's refusal of
 * a client certificate becomes one sentence naming the flags to fix.
 */
import { readFile } from 'node:fs/promises';
import type { ClientError } from '../federation/client/errors.js';
import { certificateAlert, checkClientCertificate, pemCertificates } from '../federation/transport/tlsMaterial.js';
import { TransportError } from '../federation/transport/types.js';
import { CliError, usageError } from './errors.js';

/** The flags `fedex join` takes a client certificate with. */
export const CLIENT_CERTIFICATE_FLAGS = {
  'client-cert': { type: 'string', value: 'file.pem', help: 'mutual TLS: certificate to present to a coordinator that requires one (fedex host --client-ca), signed by its CA; with --client-key' },
  'client-key': { type: 'string', value: 'file.pem', help: 'private key of --client-cert (unencrypted PEM)' },
} as const;

/** The flag `fedex host` takes the client CA with. */
export const CLIENT_CA_FLAG = {
  'client-ca': { type: 'string', value: 'ca.pem', help: 'mutual TLS: accept only clients presenting a certificate this CA signed (fedex join --client-cert); needs --cert and --key' },
} as const;

async function readPem(command: string, flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw usageError(`fedex ${command}: cannot read ${flag} ${path}: ${(err as Error).message}`);
  }
}

/** `--client-ca`: the CA file's text; a usage error naming the file when it is unreadable or holds no certificate. */
export async function readClientCa(path: string): Promise<string> {
  const pem = await readPem('host', '--client-ca', path);
  try {
    pemCertificates(pem, `--client-ca ${path}`);
  } catch (err) {
    throw usageError(`fedex host: ${(err as Error).message}.`);
  }
  return pem;
}

/**
 * `--client-cert` and `--client-key` of `fedex join` (both or neither; a wss:// URL): the PEM texts,
 * checked to parse and to belong together; undefined when neither is given.
 */
export async function readClientCertificate(certPath: string | undefined, keyPath: string | undefined, url: string): Promise<{ cert: string; key: string } | undefined> {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) throw usageError('fedex join: --client-cert and --client-key go together.');
  if (!url.startsWith('wss://')) throw usageError(`fedex join: --client-cert needs a wss:// URL (a client certificate is presented in the TLS handshake), got '${url}'.`);
  const cert = await readPem('join', '--client-cert', certPath);
  const key = await readPem('join', '--client-key', keyPath);
  try {
    checkClientCertificate(cert, key, { cert: `--client-cert ${certPath}`, key: `--client-key ${keyPath}` });
  } catch (err) {
    throw usageError(`fedex join: ${(err as Error).message}.`);
  }
  return { cert, key };
}

/**
 * The sentence for a join that failed over its client certificate: the coordinator requires one
 * and none was given, or refused the one given (a TLS alert); or, when one was given and the
 * connection was reset in the handshake (how a Node coordinator refuses a certificate its CA did
 * not sign), a hint. Null for other failures.
 */
export function certificateRefusal(err: ClientError, url: string, certPath: string | undefined): CliError | null {
  const transport = err.cause instanceof TransportError ? err.cause : undefined;
  if (transport === undefined) return null;
  const alert = certificateAlert(transport.cause);
  if (transport.code === 'T_CERTIFICATE' && alert !== null) {
    return new CliError(certPath === undefined
      ? `fedex join: ${url} requires a client certificate (mutual TLS) and refused the connection without one (TLS alert: ${alert}). Give --client-cert and --client-key: a certificate signed by the CA the coordinator trusts (its --client-ca), and its key.`
      : `fedex join: ${url} refused the client certificate --client-cert ${certPath} (TLS alert: ${alert}). Use a certificate signed by the CA the coordinator trusts (its --client-ca), valid now.`);
  }
  const code = (transport.cause as { code?: unknown } | undefined)?.code;
  if (certPath !== undefined && url.startsWith('wss://') && code === 'ECONNRESET') {
    return new CliError(
      `fedex join: ${url} closed the connection during the TLS handshake (${transport.message}). A coordinator that requires client certificates does this to a certificate its CA did not sign: check that --client-cert ${certPath} is signed by the coordinator's --client-ca.`,
    );
  }
  return null;
}
