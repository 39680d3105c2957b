// A client without the base model fetches it from a coordinator over a real loopback socket
// (docs/protocol.md §8): many small chunks, verified, cached under its hash, then a FedEx
// federation in which it holds the coordinator's base; the cache is reused without a request; a
// tampered byte or a file outside the allow-list leaves nothing behind; a download cut off, or left
// by a dead process, resumes where it stopped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { federationModel } from '../../../src/cli/commands/federationCommon.js';
import { FederationClient, type ClientOutcome } from '../../../src/federation/client/client.js';
import { ClientError } from '../../../src/federation/client/errors.js';
import { cacheFileName, ModelCache } from '../../../src/federation/client/modelCache.js';
import { fetchBaseModel, type ModelFetchOptions } from '../../../src/federation/client/modelFetch.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import type { CoordinatorConfig } from '../../../src/federation/coordinator/config.js';
import type { CoordinatorEventMap } from '../../../src/federation/coordinator/events.js';
import type { ModelOffer } from '../../../src/federation/coordinator/modelServer.js';
import { baseModelHash } from '../../../src/federation/protocol/baseModel.js';
import { suiteTempDir } from '../../helpers/tempDir.js';
import { clientOptions, tempRunDir, TOKEN } from '../coordinator/fixtures.js';
import { modelConfig, tinyModel, type TinyModel } from '../coordinator/modelFixture.js';

type Transfer = CoordinatorEventMap['model_transfer'][0];

/** Polls until `done()` (the coordinator's close event may come just before or after the client's). */
async function until(done: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function relErr(a: { data: Float32Array }, b: { data: Float32Array }): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.data.length; i++) {
    num += (a.data[i] - b.data[i]) ** 2;
    den += b.data[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

describe('client: fetching the base model', { timeout: 60_000 }, () => {
  const tmp = suiteTempDir('model-fetch');
  let m: TinyModel;
  let n = 0;
  before(async () => {
    m = await tinyModel(tmp.path);
  });

  async function withCoordinator(
    config: Partial<CoordinatorConfig>,
    offer: ModelOffer | undefined,
    body: (c: Coordinator, url: string, transfers: Transfer[]) => Promise<void>,
  ): Promise<void> {
    const { dir, cleanup } = await tempRunDir();
    const c = await Coordinator.create({ ...modelConfig(dir, m, config), ...(offer !== undefined ? { modelOffer: offer } : {}) });
    const transfers: Transfer[] = [];
    c.on('model_transfer', (e) => transfers.push(e));
    try {
      await body(c, await c.start(), transfers);
    } finally {
      await c.close();
      await cleanup();
    }
  }

  function fetchOptions(url: string, cache: ModelCache, overrides: Partial<ModelFetchOptions> = {}): ModelFetchOptions {
    return { url, token: TOKEN, name: 'fetcher', clientId: 'fetcher', cache, heartbeatMs: 200, reconnect: { initialDelayMs: 50, maxDelayMs: 400, maxAttempts: 5 }, ...overrides };
  }

  function newCache(): ModelCache {
    return new ModelCache(join(tmp.path, `cache-${++n}`));
  }

  test("fetched in 4 KiB chunks, verified and cached under its hash; the client then federates holding the coordinator's base; the cache is reused without a request", async () => {
    await withCoordinator({ minClients: 2, quorum: { count: 2 }, rounds: 2 }, m.offer(4096), async (c, url, transfers) => {
      const cache = newCache();
      const fetched = await fetchBaseModel(fetchOptions(url, cache, { clientId: 'c1' }));

      const expectedRequests = m.manifest.files.reduce((k, f) => k + Math.ceil(f.bytes / 4096), 0);
      assert.equal(fetched.downloaded, true);
      assert.equal(fetched.requests, expectedRequests);
      assert.equal(fetched.bytesFetched, m.totalBytes);
      assert.equal(fetched.manifest.hash, m.manifest.hash);
      assert.equal(fetched.manifest.dir, join(cache.root, m.manifest.hash));
      assert.deepEqual(await readdir(cache.root), [m.manifest.hash], 'no partial folder or lock left');
      for (const [i, f] of m.manifest.files.entries()) assert.deepEqual(await readFile(join(fetched.manifest.dir, f.name)), await m.bytes(i));
      await until(() => transfers.some((t) => t.status === 'finished'));
      assert.deepEqual(transfers.map((t) => [t.status, t.bytesServed, t.requests]), [['started', 0, 1], ['finished', m.totalBytes, expectedRequests]]);

      const local = await federationModel(fetched.manifest.dir, 'join', { rank: 8, alpha: 16, seed: 0, targetModules: ['all-linear'] }, fetched.manifest);
      const clients = [
        new FederationClient(clientOptions(url, 0, { base: m.model.base })),
        new FederationClient(clientOptions(url, 1, { base: local.base })),
      ];
      const [, a, b] = await Promise.all([c.run(), ...clients.map((x) => x.run())]) as [unknown, ClientOutcome, ClientOutcome];
      const final = c.snapshot();
      assert.equal(b.roundsParticipated, 2, 'the client that fetched the model trained both rounds');
      assert.equal(b.baseRevision, final.revision);
      assert.ok(final.revision > 0, 'FedEx changed the base');
      for (const l of m.model.layout) {
        assert.ok(relErr(b.base!.modules.get(l.module)!, final.base.get(l.module)!) < 1e-6, `${l.module}: the fetched base ends as the coordinator's`);
        assert.deepEqual(b.base!.modules.get(l.module)!.data, a.base!.modules.get(l.module)!.data, `${l.module}: both clients hold the same bits`);
      }

      const again = await fetchBaseModel(fetchOptions(url, cache, { clientId: 'c9' }));
      assert.equal(again.downloaded, false);
      assert.equal(again.requests, 0);
      assert.equal(again.manifest.dir, fetched.manifest.dir);
      assert.equal(transfers.length, 2, 'the coordinator served nothing the second time');
    });
  });

  test('a tampered byte fails the SHA-256 check and nothing is left in the cache', async () => {
    const dir = join(tmp.path, 'tampered');
    await cp(m.dir, dir, { recursive: true });
    const w = m.manifest.files.findIndex((f) => f.name === 'model.safetensors');
    const path = join(dir, 'model.safetensors');
    const bytes = await readFile(path);
    bytes[bytes.length - 100] ^= 0x01;
    await writeFile(path, bytes);
    await withCoordinator({}, { ...m.offer(4096), dir }, async (_c, url) => {
      const cache = newCache();
      await assert.rejects(fetchBaseModel(fetchOptions(url, cache)), (err: unknown) =>
        err instanceof ClientError && err.code === 'E_MODEL_TRANSFER'
        && err.message.includes(`base model file ${w} (model.safetensors)`) && /SHA-256/.test(err.message));
      assert.deepEqual(await readdir(cache.root), [], 'no model, partial folder or lock');
    });
  });

  test("a file outside the client's allow-list is refused before anything is written; no offer is E_BASE_MISMATCH", async () => {
    const dir = join(tmp.path, 'odd-name');
    await cp(m.dir, dir, { recursive: true });
    await writeFile(join(dir, 'notes.txt'), 'hello');
    const files = [...m.manifest.files, { name: 'notes.txt', bytes: 5, sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824' }];
    const hash = baseModelHash(files);
    await withCoordinator({ base: { hash, load: (layout) => m.model.base.load(layout) } }, { dir, hash, files }, async (_c, url) => {
      const cache = newCache();
      await assert.rejects(fetchBaseModel(fetchOptions(url, cache)), (err: unknown) => err instanceof ClientError && err.code === 'E_MODEL_TRANSFER' && /'notes\.txt' this client does not store/.test(err.message));
      await assert.rejects(readdir(cache.root), { code: 'ENOENT' });
    });
    await withCoordinator({}, undefined, async (_c, url) => {
      await assert.rejects(fetchBaseModel(fetchOptions(url, newCache())), (err: unknown) => err instanceof ClientError && err.code === 'E_BASE_MISMATCH' && /does not transfer models/.test(err.message));
    });
    assert.equal(cacheFileName('../model.safetensors'), null);
    assert.equal(cacheFileName('model-00002-of-00003.safetensors'), 'model-00002-of-00003.safetensors');
  });

  test('a download cut off resumes on the next connection; one left by a dead process is taken over and resumed', async () => {
    await withCoordinator({}, m.offer(4096), async (c, url, transfers) => {
      const cache = newCache();
      let cut = false;
      const fetched = await fetchBaseModel(fetchOptions(url, cache, {
        onProgress: (p) => {
          if (p.status !== 'progress' || cut) return;
          cut = true;
          c.fetching.get('fetcher')!.conn.terminate();
        },
      }));
      assert.equal(fetched.bytesFetched, m.totalBytes, 'every byte fetched once');
      await until(() => transfers.some((t) => t.status === 'finished'));
      assert.deepEqual(transfers.map((t) => t.status), ['started', 'aborted', 'started', 'finished']);

      // A dead process's lock and partial download: the first 10 000 bytes of the weights.
      const other = newCache();
      const hash = m.manifest.hash;
      const w = m.manifest.files.findIndex((f) => f.name === 'model.safetensors');
      const partial = `${other.dirOf(hash)}.partial`;
      await mkdir(partial, { recursive: true });
      await writeFile(join(partial, 'model.safetensors'), (await m.bytes(w)).subarray(0, 10_000));
      const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
      await writeFile(`${other.dirOf(hash)}.lock`, String(dead));
      const resumed = await fetchBaseModel(fetchOptions(url, other));
      assert.equal(resumed.bytesFetched, m.totalBytes - 10_000);
      assert.deepEqual(await readdir(other.root), [hash]);
    });
  });
});
