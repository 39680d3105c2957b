// wss:// as users run it: `fedex host --cert --key` with a certificate issued to `localhost` (the
// usual self-made one) served on 127.0.0.1 prints a join URL that passes the hostname check, and a
// `fedex join` with that URL, the token in FEDEX_TOKEN and `--ca` (trusted in addition to Node's
// default CAs) completes the federation; without `--ca` the certificate is refused.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { suiteFedex, waitForOutput } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { makeTestCertificate } from '../helpers/testCertificate.js';

describe('fedex host --cert/--key + fedex join --ca', { timeout: 120_000 }, () => {
  const start = suiteFedex();
  const tmp = suiteTempDir('cli-tls');

  test('the printed join URL names the certificate; join with --ca completes; without it the certificate is refused', async (t) => {
    const tls = await makeTestCertificate(t, 'DNS:localhost');
    if (tls === null) return;
    t.after(() => tls.dir.remove());
    const tokenFile = join(tmp.path, 'token');
    await writeFile(tokenFile, 'tls-token\n');
    const host = start(['host', '--model', 'synthetic', '--port', '0', '--rounds', '1', '--min-clients', '1', '--token-file', tokenFile, '--cert', tls.certPath, '--key', tls.keyPath, '--out', join(tmp.path, 'run')]);
    const [, joinUrl] = await waitForOutput(host, /clients use (wss:\/\/localhost:\d+\/)\)/);
    await waitForOutput(host, /join token: tls-token/);
    // The printed command uses the certificate's name (waited for: the host writes it after the URL).
    await waitForOutput(host, new RegExp(`FEDEX_TOKEN=tls-token fedex join ${joinUrl.replace(/[/.]/g, '\\$&')} `));
    const env = { FEDEX_TOKEN: 'tls-token' };
    const untrusted = await start(['join', joinUrl, '--model', 'synthetic', '--retries', '1'], { env }).done;
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /cannot reach .*(self.signed|certificate)/i);
    const joined = start(['join', joinUrl, '--model', 'synthetic', '--ca', tls.certPath], { env });
    const [h, j] = await Promise.all([host.done, joined.done]);
    assert.equal(j.code, 0, j.stderr);
    assert.equal(h.code, 0, h.stderr);
    assert.match(j.stdout, /federation completed: 1 rounds aggregated/);
  });
});
