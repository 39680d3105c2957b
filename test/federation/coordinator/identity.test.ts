// Per-client identity over loopback (issue: any holder of the shared token could hello with another
// client's clientId, take its round and have its upload aggregated as that client's). With an
// enrolled-key registry the coordinator admits a clientId only to the holder of its key: a signed
// challenge in the handshake, a revoked key refused and disconnected, the registry kept on resume.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import { enrollClient, revokeClient, writeEnrollment, ENROLLMENT_FORMAT, ENROLLMENT_VERSION, type EnrollmentFile } from '../../../src/federation/coordinator/enrollment.js';
import { publicKeyText, signChallenge } from '../../../src/federation/protocol/identity.js';
import type { ClientIdentity } from '../../../src/federation/shared/identityFiles.js';
import { answerChallenge } from '../../../src/federation/client/credentials.js';
import { coordinatorConfig, startClients, tempRunDir, TOKEN, waitFor } from './fixtures.js';
import { RawPeer } from './rawPeer.js';
import type { ParamsOf } from '../../../src/federation/protocol/messages.js';

function identity(clientId: string): ClientIdentity {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { clientId, privateKey, publicKey: publicKeyText(privateKey) };
}

async function registry(path: string, ids: readonly ClientIdentity[]): Promise<EnrollmentFile> {
  let file: EnrollmentFile = { format: ENROLLMENT_FORMAT, version: ENROLLMENT_VERSION, clients: [] };
  for (const id of ids) file = enrollClient(file, id.clientId, id.publicKey);
  await writeEnrollment(path, file);
  return file;
}

/** A keyed coordinator with c0, c1, c2 and mallory enrolled. */
async function withKeyed(overrides: Parameters<typeof coordinatorConfig>[1],
  body: (ctx: { c: Coordinator; url: string; ids: ClientIdentity[]; mallory: ClientIdentity; registryPath: string; file: EnrollmentFile; dir: string }) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempRunDir();
  const ids = [0, 1, 2].map((i) => identity(`c${i}`));
  const mallory = identity('mallory');
  const registryPath = join(dir, '..', 'clients.json');
  const file = await registry(registryPath, [...ids, mallory]);
  const c = await Coordinator.create({ ...coordinatorConfig(dir, overrides), clients: registryPath });
  try {
    const url = await c.start();
    await body({ c, url, ids, mallory, registryPath, file, dir });
  } finally {
    await c.close();
    await cleanup();
  }
}

/** A raw peer's keyed hello for `id` presenting `publicKey` (default its own). */
function keyedHello(id: ClientIdentity, publicKey = id.publicKey): Partial<ParamsOf<'hello'>> {
  return { protocolMinor: 2, clientId: id.clientId, token: undefined, identity: { scheme: 'ed25519', publicKey } };
}

describe('per-client identity (enrolled Ed25519 keys, protocol 1.2)', () => {
  test('keyed clients complete a federation of 3 rounds', async () => {
    await withKeyed({}, async ({ c, url, ids }) => {
      const joined: string[] = [];
      c.on('client_joined', (e) => joined.push(e.clientId));
      const { runs } = startClients(url, 3, (i) => ({ token: undefined, clientId: undefined, identity: ids[i] }));
      const summary = await c.run();
      await Promise.all(runs);
      assert.equal(summary.roundsCompleted, 3);
      assert.deepEqual([...new Set(joined)].sort(), ['c0', 'c1', 'c2']);
    });
  });

  test("impersonation is refused: another client's id with one's own key, or with its public key but one's own signature", async () => {
    await withKeyed({}, async ({ url, ids, mallory }) => {
      // Mallory's own (enrolled) key under c0's id.
      const p1 = await RawPeer.connect(url);
      await p1.hello({ ...keyedHello({ ...mallory, clientId: 'c0' }) });
      const r1 = await p1.next('reject');
      assert.equal(r1.params.code, 'E_AUTH');
      assert.match(r1.params.message, /not the one enrolled for client 'c0'/);
      // c0's public key (which is public), but Mallory can only sign with her own private key.
      const p2 = await RawPeer.connect(url);
      const hello = { ...keyedHello(ids[0]) };
      await p2.hello(hello);
      const challenge = await p2.next('challenge');
      const forged = answerChallenge({ ...ids[0], privateKey: mallory.privateKey }, { ...hello, clientName: 'raw peer', device: 'cpu' } as ParamsOf<'hello'>, challenge.params);
      await p2.send({ method: 'challenge_response', params: forged });
      const r2 = await p2.next('reject');
      assert.equal(r2.params.code, 'E_AUTH');
      assert.match(r2.params.message, /does not verify/);
    });
  });

  test('a signature is good for its own challenge only (a replayed response is refused)', async () => {
    await withKeyed({}, async ({ url, ids }) => {
      const base = { clientName: 'raw peer', device: 'cpu' };
      const p1 = await RawPeer.connect(url);
      const hello = { ...keyedHello(ids[1]) };
      await p1.hello(hello);
      const ch1 = await p1.next('challenge');
      const response = answerChallenge(ids[1], { ...hello, ...base, baseModelHash: (hello as { baseModelHash?: string }).baseModelHash } as ParamsOf<'hello'>, ch1.params);
      p1.conn.terminate();
      // An eavesdropper replays the response on a new connection: the nonce differs.
      const p2 = await RawPeer.connect(url);
      await p2.hello(hello);
      const ch2 = await p2.next('challenge');
      assert.notEqual(ch2.params.nonce, ch1.params.nonce);
      await p2.send({ method: 'challenge_response', params: response });
      const r = await p2.next('reject');
      assert.equal(r.params.code, 'E_AUTH');
    });
  });

  test('a response signed outside the allowed clock skew is refused, naming the clock', async () => {
    await withKeyed({}, async ({ url, ids }) => {
      const p = await RawPeer.connect(url);
      await p.hello(keyedHello(ids[2]));
      const ch = await p.next('challenge');
      const signedAt = Date.now() - 10 * 60_000;
      const { BASE } = await import('./fixtures.js');
      const signature = signChallenge(ids[2].privateKey, { nonce: ch.params.nonce, clientId: 'c2', publicKey: ids[2].publicKey, baseModelHash: BASE.hash, signedAt });
      await p.send({ method: 'challenge_response', params: { signature, signedAt } });
      const r = await p.next('reject');
      assert.equal(r.params.code, 'E_AUTH');
      assert.match(r.params.message, /behind the coordinator's clock/);
    });
  });

  test('the shared token admits no one at a keyed coordinator, and a key admits no one at a token coordinator', async () => {
    await withKeyed({}, async ({ url }) => {
      const p = await RawPeer.connect(url);
      await p.hello({ clientId: 'c0', token: TOKEN });
      const r = await p.next('reject');
      assert.equal(r.params.code, 'E_AUTH');
      assert.match(r.params.message, /enrolled clients only/);
    });
    const { dir, cleanup } = await tempRunDir();
    const c = await Coordinator.create(coordinatorConfig(dir));
    try {
      const url = await c.start();
      const p = await RawPeer.connect(url);
      await p.hello(keyedHello(identity('c0')));
      const r = await p.next('reject');
      assert.equal(r.params.code, 'E_AUTH');
      assert.match(r.params.message, /shared join token/);
    } finally {
      await c.close();
      await cleanup();
    }
  });

  test('a client revoked while joined is disconnected, and its key is refused from then on', async () => {
    await withKeyed({ minClients: 4 }, async ({ c, url, ids, registryPath, file }) => {
      const { clients, runs } = startClients(url, 1, () => ({ token: undefined, clientId: undefined, identity: ids[0], reconnect: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 3 } }));
      const ended = runs[0].then(() => null, (err: unknown) => err as Error & { code?: string });
      await waitFor(c, 'client_joined', (e: { clientId: string }) => e.clientId === 'c0');
      const left = waitFor(c, 'client_left', (e: { clientId: string }) => e.clientId === 'c0', 5_000);
      await writeEnrollment(registryPath, revokeClient(file, 'c0'));
      await left;
      // The client is told why, and gives up (E_AUTH is not worth retrying).
      const err = await ended;
      assert.equal(err?.code, 'E_AUTH');
      assert.match(err.message, /revoked/);
      assert.equal(clients[0].clientId, 'c0');
      const p = await RawPeer.connect(url);
      await p.hello(keyedHello(ids[0]));
      const r = await p.next('reject');
      assert.equal(r.params.code, 'E_AUTH');
      assert.match(r.params.message, /revoked/);
    });
  });

  test('a resumed run keeps admitting by key (the registry is recorded in the run directory)', async () => {
    const { dir, cleanup } = await tempRunDir();
    const ids = [identity('c0')];
    const registryPath = join(dir, '..', 'clients.json');
    await registry(registryPath, ids);
    const c = await Coordinator.create({ ...coordinatorConfig(dir), clients: registryPath });
    await c.close();
    const resumed = await Coordinator.resume(dir, { token: TOKEN });
    try {
      assert.equal(resumed.keys?.path, registryPath);
      const url = await resumed.start();
      const p = await RawPeer.connect(url);
      await p.hello({ clientId: 'c0', token: TOKEN });
      assert.equal((await p.next('reject')).params.code, 'E_AUTH');
      const q = await RawPeer.connect(url);
      await q.hello(keyedHello(ids[0]));
      await q.next('challenge');
    } finally {
      await resumed.close();
      await cleanup();
    }
  });
});
