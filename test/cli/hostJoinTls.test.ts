// wss:// as users run it: `fedex host --cert --key` with a certificate issued to `localhost` (the
// usual self-made one) served on 127.0.0.1 prints a join URL that passes the hostname check, and a
// `fedex join` with that URL, the token in FEDEX_TOKEN and `--ca` (trusted in addition to Node's
// default CAs) completes the federation; without `--ca` the certificate is refused.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnFedex, waitForOutput, type FedexRun } from '../helpers/fedexProcess.js';
import { makeTempDir, type TempDir } from '../helpers/tempDir.js';
import { makeTestCertificate } from '../helpers/testCertificate.js';

describe('fedex host --cert/--key + fedex join --ca', { timeout: 120_000 }, () => {
  let tmp: TempDir;
  const running: FedexRun[] = [];
  before(async () => {
    tmp = await makeTempDir('cli-tls');
  });
  after(async () => {
    for (const r of running) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await tmp.remove();
  });

  test('the printed join URL names the certificate; join with --ca completes; without it the certificate is refused', async (t) => {
    const tls = await makeTestCertificate(t, 'DNS:localhost');
    if (tls === null) return;
    t.after(() => tls.dir.remove());
    const tokenFile = join(tmp.path, 'token');
    await writeFile(tokenFile, 'tls-token\n');
    const host = spawnFedex(['host', '--model', 'synthetic', '--port', '0', '--rounds', '1', '--min-clients', '1', '--token-file', tokenFile, '--cert', tls.certPath, '--key', tls.keyPath, '--out', join(tmp.path, 'run')]);
    running.push(host);
    const [, joinUrl] = await waitForOutput(host, /clients use (wss:\/\/localhost:\d+\/)\)/);
    await waitForOutput(host, /join token: tls-token/);
    // The printed command uses the certificate's name (waited for: the host writes it after the URL).
    await waitForOutput(host, new RegExp(`FEDEX_TOKEN=tls-token fedex join ${joinUrl.replace(/[/.]/g, '\\$&')} `));
    const env = { FEDEX_TOKEN: 'tls-token' };
    const untrusted = await spawnFedex(['join', joinUrl, '--model', 'synthetic', '--retries', '1'], { env }).done;
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /cannot reach .*(self.signed|certificate)/i);
    const joined = spawnFedex(['join', joinUrl, '--model', 'synthetic', '--ca', tls.certPath], { env });
    running.push(joined);
    const [h, j] = await Promise.all([host.done, joined.done]);
    assert.equal(j.code, 0, j.stderr);
    assert.equal(h.code, 0, h.stderr);
    assert.match(j.stdout, /federation completed: 1 rounds aggregated/);
  });
});
