// Per-client identity as users run it: `fedex keygen` per client, `fedex clients add` of each .pub,
// `fedex host --clients` (the shipped default model, fetched by the clients), `fedex join --identity`
// as separate processes for 3 rounds; a key that is not enrolled is refused with a message that says
// so; `fedex clients revoke` on a running federation disconnects that client and its join exits.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { suiteFedex, waitForHostUrl, waitForOutput, type FedexRun } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';

const start = suiteFedex();
const fedex = (...args: string[]): FedexRun => start(args);
const tmp = suiteTempDir('cli-identity');

/** `fedex keygen` for `id` in the test folder; its key and .pub paths. */
async function keygen(id: string): Promise<{ key: string; pub: string }> {
  const key = join(tmp.path, `${id}.key`);
  const r = await fedex('keygen', '--client-id', id, '--out', key).done;
  assert.equal(r.code, 0, r.stderr);
  return { key, pub: join(tmp.path, `${id}.pub`) };
}

describe('fedex keygen + fedex clients + fedex host --clients + fedex join --identity', { timeout: 240_000 }, () => {
  test('enrolled clients complete 3 rounds on the default model; an unenrolled key is refused', async () => {
    const registry = join(tmp.path, 'clients.json');
    const alice = await keygen('alice');
    const bob = await keygen('bob');
    const eve = await keygen('eve');
    assert.equal((await stat(alice.key)).mode & 0o777, 0o600, 'the private key file is private');
    for (const k of [alice, bob]) {
      const r = await fedex('clients', 'add', k.pub, '--clients', registry).done;
      assert.equal(r.code, 0, r.stderr);
    }
    const listed = await fedex('clients', 'list', '--clients', registry).done;
    assert.match(listed.stdout, /alice\s+enrolled/);
    assert.match(listed.stdout, /bob\s+enrolled/);

    const host = fedex('host', '--port', '0', '--rounds', '3', '--clients', registry, '--out', join(tmp.path, 'run'));
    const url = await waitForHostUrl(host, 60_000);
    await waitForOutput(host, /clients admitted by key: 2 enrolled/);
    assert.doesNotMatch(host.output(), /join token:/, 'no shared token is offered when clients are admitted by key');
    const cache = join(tmp.path, 'model-cache');
    const refused = await fedex('join', url, '--identity', eve.key, '--data', 'task:arith', '--model-cache', cache).done;
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused this client \(E_AUTH\): .*client 'eve' is not enrolled/);
    const joins = [alice, bob].map((k, i) => fedex('join', url, '--identity', k.key, '--data', 'task:arith', '--shard', `${i + 1}/2`, '--model-cache', cache));
    const [h, ...js] = await Promise.all([host.done, ...joins.map((j) => j.done)]);
    for (const j of js) {
      assert.equal(j.code, 0, j.stderr);
      assert.match(j.stdout, /federation completed: 3 rounds aggregated/);
    }
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /\(client alice, by key\) joined/);
    assert.match(h.stdout, /\(client bob, by key\) joined/);
  });

  test('fedex clients revoke disconnects a joined client at once, and its join exits naming the revocation', async () => {
    const registry = join(tmp.path, 'clients2.json');
    const carol = await keygen('carol');
    assert.equal((await fedex('clients', 'add', carol.pub, '--clients', registry).done).code, 0);
    const host = fedex('host', '--model', 'synthetic', '--port', '0', '--rounds', '2', '--min-clients', '2', '--clients', registry, '--out', join(tmp.path, 'run2'));
    const url = await waitForHostUrl(host, 60_000);
    const joined = fedex('join', url, '--identity', carol.key, '--model', 'synthetic');
    await waitForOutput(host, /\(client carol, by key\) joined/);
    const revoked = await fedex('clients', 'revoke', 'carol', '--clients', registry).done;
    assert.equal(revoked.code, 0, revoked.stderr);
    const j = await joined.done;
    assert.equal(j.code, 1);
    assert.match(j.stderr, /refused this client \(E_AUTH\): .*'carol' was revoked/);
    const listed = await fedex('clients', 'list', '--clients', registry).done;
    assert.match(listed.stdout, /carol\s+revoked/);
    host.child.kill('SIGINT');
    await host.done;
  });
});
