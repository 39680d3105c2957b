// A self-signed certificate for the TLS tests, made with openssl in a temporary folder. Outside CI a
// machine without openssl skips those tests; in CI (CI set) its absence fails them.
import { execFileSync } from 'node:child_process';
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

/**
 * An EC P-256 certificate valid for a day, for `subjectAltName` (e.g. `IP:127.0.0.1` or
 * `DNS:localhost`); null (the test skipped) when openssl is missing outside CI.
 */
export async function makeTestCertificate(t: TestContext, subjectAltName: string): Promise<TestCertificate | null> {
  const dir = await makeTempDir('tls');
  const certPath = join(dir.path, 'cert.pem');
  const keyPath = join(dir.path, 'key.pem');
  const cn = subjectAltName.replace(/^(IP|DNS):/, '');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath,
      '-days', '1', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${subjectAltName}`], { stdio: 'ignore' });
  } catch (err) {
    await dir.remove();
    if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') throw new Error(`openssl is needed in CI to make a test certificate: ${(err as Error).message}`, { cause: err });
    t.skip('openssl is not available to make a test certificate');
    return null;
  }
  return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8'), certPath, keyPath, dir };
}
