// A self-signed certificate for the TLS tests, and a CA with client certificates it signs for the
// mutual-TLS tests, made with openssl in a temporary folder. Outside CI a machine without openssl
// skips those tests; in CI (CI set) its absence fails them.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { makeTempDir, type TempDir } from './tempDir.js';

/** A certificate and its key (PEM), their files, and the folder holding them (remove it when done). */
export interface TestCertificate {
  readonly cert: string;
  readonly key: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly dir: TempDir;
}

const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Runs openssl; false (the folder removed, the test skipped) when it is missing outside CI. */
async function openssl(t: TestContext, dir: TempDir, args: readonly string[]): Promise<boolean> {
  try {
    execFileSync('openssl', args, { stdio: 'ignore' });
    return true;
  } catch (err) {
    await dir.remove();
    if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') throw new Error(`openssl is needed in CI to make a test certificate: ${(err as Error).message}`, { cause: err });
    t.skip('openssl is not available to make a test certificate');
    return false;
  }
}

/**
 * An EC P-256 certificate valid for a day, for `subjectAltName` (e.g. `IP:127.0.0.1` or
 * `DNS:localhost`); null (the test skipped) when openssl is missing outside CI.
 */
export async function makeTestCertificate(t: TestContext, subjectAltName: string): Promise<TestCertificate | null> {
  const dir = await makeTempDir('tls');
  const certPath = join(dir.path, 'cert.pem');
  const keyPath = join(dir.path, 'key.pem');
  const cn = subjectAltName.replace(/^(IP|DNS):/, '');
  if (!await openssl(t, dir, ['req', '-x509', ...NEW_EC_KEY, '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${subjectAltName}`])) return null;
  return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8'), certPath, keyPath, dir };
}

/** A certificate authority for mutual-TLS tests: its certificate (PEM) and files, and what it signs. */
export interface TestCertificateAuthority {
  readonly cert: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** Holds the CA's files and every certificate it issued (remove it when done). */
  readonly dir: TempDir;
  /**
   * A client certificate (`extendedKeyUsage=clientAuth`, valid for a day) for the subject `subj`
   * (`/CN=alice/O=Lab`) signed by this CA, its files named after `name` in the CA's folder.
   */
  issueClientCertificate(name: string, subj: string): TestCertificate;
}

/**
 * A CA (EC P-256, `CA:TRUE`, valid for a day) named `/CN=${name}`, as `openssl req -x509` makes one;
 * null (the test skipped) when openssl is missing outside CI.
 */
export async function makeTestCertificateAuthority(t: TestContext, name: string): Promise<TestCertificateAuthority | null> {
  const dir = await makeTempDir('tls-ca');
  const certPath = join(dir.path, 'ca.pem');
  const keyPath = join(dir.path, 'ca-key.pem');
  if (!await openssl(t, dir, ['req', '-x509', ...NEW_EC_KEY, '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']))
    return null;
  let serial = 1;
  return {
    cert: readFileSync(certPath, 'utf8'),
    certPath,
    keyPath,
    dir,
    issueClientCertificate(clientName: string, subj: string): TestCertificate {
      const key = join(dir.path, `${clientName}-key.pem`);
      const csr = join(dir.path, `${clientName}.csr`);
      const cert = join(dir.path, `${clientName}.pem`);
      const extensions = join(dir.path, `${clientName}.ext`);
      writeFileSync(extensions, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
      // Two steps (a request, then the CA signs it) as docs/security.md shows, which LibreSSL's openssl also does.
      execFileSync('openssl', ['req', '-new', ...NEW_EC_KEY, '-keyout', key, '-out', csr, '-subj', subj], { stdio: 'ignore' });
      execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', certPath, '-CAkey', keyPath, '-set_serial', String(serial++), '-days', '1', '-extfile', extensions, '-out', cert], { stdio: 'ignore' });
      return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8'), certPath: cert, keyPath: key, dir };
    },
  };
}
