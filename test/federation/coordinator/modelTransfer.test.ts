// The coordinator serves its base model (docs/protocol.md §8) to a hand-driven peer over a real
// loopback socket: the manifest in welcome, exactly the requested bytes in request order, typed
// E_MODEL_TRANSFER refusals (index, range, length, hash, frame limit) after which it keeps serving,
// model_transfer events, a fetching client never sampled, and the refusals without an offer.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { sha256Hex } from '../../../src/federation/protocol/baseModel.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import type { CoordinatorEventMap } from '../../../src/federation/coordinator/events.js';
import { suiteTempDir } from '../../helpers/tempDir.js';
import { tempRunDir, waitFor } from './fixtures.js';
import { fetchHello, modelConfig, tinyModel, type TinyModel } from './modelFixture.js';
import { RawPeer } from './rawPeer.js';

type Transfer = CoordinatorEventMap['model_transfer'][0];

describe('coordinator: base model transfer', { timeout: 30_000 }, () => {
  const tmp = suiteTempDir('model-transfer');
  let m: TinyModel;
  before(async () => {
    m = await tinyModel(tmp.path);
  });

  async function withCoordinator(offer: boolean, body: (c: Coordinator, url: string, transfers: Transfer[], codes: string[]) => Promise<void>): Promise<void> {
    const { dir, cleanup } = await tempRunDir();
    const c = await Coordinator.create({ ...modelConfig(dir, m), ...(offer ? { modelOffer: m.offer(4096) } : {}) });
    const transfers: Transfer[] = [];
    const codes: string[] = [];
    c.on('model_transfer', (e) => transfers.push(e));
    c.on('protocol_error', (e) => codes.push(e.code));
    try {
      await body(c, await c.start(), transfers, codes);
    } finally {
      await c.close();
      await cleanup();
    }
  }

  test('welcome carries the manifest; chunks are exactly the requested bytes, in request order; bad requests get E_MODEL_TRANSFER and serving goes on', async () => {
    await withCoordinator(true, async (c, url, _transfers, codes) => {
      const peer = await RawPeer.connect(url);
      await peer.send(fetchHello());
      const welcome = await peer.next('welcome');
      const files = m.manifest.files;
      assert.deepEqual(welcome.params.baseModel, { hash: m.manifest.hash, files: files.map((f) => ({ ...f })) });
      assert.equal(welcome.params.limits.maxChunkBytes, 4096);
      assert.equal(c.fetching.size, 1, 'admitted to fetch');
      assert.equal(c.joined.size, 0, 'not joined: never sampled');

      const w = files.findIndex((f) => f.name === 'model.safetensors');
      const big = files[w].bytes;
      const hash = m.manifest.hash;
      const requests = [
        { hash, file: w, offset: 0, length: 100 },
        { hash, file: files.length, offset: 0, length: 1 }, // no such file
        { hash, file: w, offset: 5000, length: 4096 },
        { hash, file: w, offset: big - 10, length: 20 }, // runs past the end
        { hash, file: w, offset: 0, length: 4097 }, // over maxChunkBytes
        { hash: 'ab'.repeat(32), file: w, offset: 0, length: 1 }, // not the offered model
        { hash, file: w, offset: big - 50, length: 50 }, // the last bytes
      ];
      for (const params of requests) await peer.send({ method: 'model_request', params });
      const source = await m.bytes(w);
      const expect = ['chunk', 'error', 'chunk', 'error', 'error', 'error', 'chunk'];
      for (const [i, kind] of expect.entries()) {
        const answer = await peer.nextOf(['model_chunk', 'error']);
        const r = requests[i];
        if (kind === 'error') {
          assert.equal(answer.method, 'error', `answer ${i}`);
          assert.equal((answer.params as { code: string }).code, 'E_MODEL_TRANSFER');
          assert.equal((answer.params as { fatal: boolean }).fatal, false);
          continue;
        }
        assert.equal(answer.method, 'model_chunk', `answer ${i}`);
        assert.deepEqual(answer.params, { hash, file: w, offset: r.offset });
        assert.deepEqual(Buffer.from(answer.blob!), source.subarray(r.offset, r.offset + r.length), `chunk ${i} is the file's bytes`);
      }
      assert.deepEqual(codes, ['E_MODEL_TRANSFER', 'E_MODEL_TRANSFER', 'E_MODEL_TRANSFER', 'E_MODEL_TRANSFER']);
      assert.ok(peer.conn.isOpen, 'still connected');
      peer.conn.close();
    });
  });

  test('a client that fetches every byte: started, then finished with the bytes and requests; no round starts for it', async () => {
    await withCoordinator(true, async (c, url, transfers) => {
      const peer = await RawPeer.connect(url);
      await peer.send(fetchHello());
      await peer.next('welcome');
      let requests = 0;
      for (const [i, f] of m.manifest.files.entries()) {
        const parts: Buffer[] = [];
        for (let offset = 0; offset < f.bytes; offset += 4096) {
          await peer.send({ method: 'model_request', params: { hash: m.manifest.hash, file: i, offset, length: Math.min(4096, f.bytes - offset) } });
          requests++;
          parts.push(Buffer.from((await peer.next('model_chunk')).blob!));
        }
        assert.equal(sha256Hex(Buffer.concat(parts)), f.sha256, `file ${f.name} arrives intact`);
      }
      await peer.send({ method: 'leave', params: { reason: 'base model fetched' } });
      await peer.closed;
      await waitFor(c, 'model_transfer', (e: Transfer) => e.status !== 'started');
      assert.deepEqual(transfers.map((t) => t.status), ['started', 'finished']);
      assert.deepEqual(transfers[1], { clientId: 'fetcher', name: 'fetcher', status: 'finished', bytesServed: m.totalBytes, requests });
      assert.equal(c.runner.startedRound, 0, 'minClients is 1, yet a fetching client starts no round');
      assert.equal(c.fetching.size, 0);
    });
  });

  test('a transfer cut off is aborted; the same client finishing on a new connection counts as finished', async () => {
    await withCoordinator(true, async (c, url, transfers) => {
      const w = m.manifest.files.findIndex((f) => f.name === 'model.safetensors');
      const fetchRange = async (peer: RawPeer, file: number, from: number, to: number): Promise<void> => {
        for (let offset = from; offset < to; offset += 4096) {
          await peer.send({ method: 'model_request', params: { hash: m.manifest.hash, file, offset, length: Math.min(4096, to - offset) } });
          await peer.next('model_chunk');
        }
      };
      const first = await RawPeer.connect(url);
      await first.send(fetchHello());
      await first.next('welcome');
      await fetchRange(first, w, 0, 8192);
      first.conn.terminate();
      await waitFor(c, 'model_transfer', (e: Transfer) => e.status === 'aborted');
      assert.equal(transfers.at(-1)!.bytesServed, 8192);

      const second = await RawPeer.connect(url);
      await second.send(fetchHello());
      await second.next('welcome');
      for (const [i, f] of m.manifest.files.entries()) await fetchRange(second, i, i === w ? 8192 : 0, f.bytes);
      second.conn.close();
      const done = await waitFor(c, 'model_transfer', (e: Transfer) => e.status === 'finished');
      assert.equal(done.bytesServed, m.totalBytes - 8192);
    });
  });

  test("a chunk that would not fit the client's frame limit is refused; so is a base it holds but cannot replace", async () => {
    await withCoordinator(true, async (_c, url) => {
      const small = await RawPeer.connect(url);
      await small.send(fetchHello({ clientId: 'small', capabilities: { uplinkDtypes: ['float32'], factoredResidual: true, modelTransfer: true, maxFrameBytes: 4096 } }));
      await small.next('welcome');
      const w = m.manifest.files.findIndex((f) => f.name === 'model.safetensors');
      await small.send({ method: 'model_request', params: { hash: m.manifest.hash, file: w, offset: 0, length: 4000 } });
      const refused = await small.next('error');
      assert.equal(refused.params.code, 'E_MODEL_TRANSFER');
      assert.match(refused.params.message, /does not fit the client's maxFrameBytes 4096/);
      small.conn.close();

      const other = await RawPeer.connect(url);
      await other.hello({ baseModelHash: 'f'.repeat(64) });
      const reject = await other.next('reject');
      assert.equal(reject.params.code, 'E_BASE_MISMATCH');
      assert.match(reject.params.message, /modelTransfer is false/);
    });
  });

  test('without an offer: a client without the model is refused E_BASE_MISMATCH; a model_request gets E_MODEL_TRANSFER', async () => {
    await withCoordinator(false, async (_c, url) => {
      const fetcher = await RawPeer.connect(url);
      await fetcher.send(fetchHello());
      const reject = await fetcher.next('reject');
      assert.equal(reject.params.code, 'E_BASE_MISMATCH');
      assert.match(reject.params.message, /the client has no base model, and this coordinator does not transfer models/);

      const holder = await RawPeer.connect(url);
      await holder.hello({ baseModelHash: m.manifest.hash });
      const welcome = await holder.next('welcome');
      assert.equal(welcome.params.baseModel, undefined);
      await holder.send({ method: 'model_request', params: { hash: m.manifest.hash, file: 0, offset: 0, length: 1 } });
      const error = await holder.next('error');
      assert.equal(error.params.code, 'E_MODEL_TRANSFER');
      holder.conn.close();
    });
  });

  test("a resumed run chooses its offer once it knows the run's base model hash", async () => {
    const { dir, cleanup } = await tempRunDir();
    try {
      await (await Coordinator.create(modelConfig(dir, m))).close();
      let asked: string | undefined;
      const c = await Coordinator.resume(dir, { modelOffer: async (hash) => ((asked = hash), m.offer()) });
      try {
        const peer = await RawPeer.connect(await c.start());
        await peer.send(fetchHello());
        assert.equal((await peer.next('welcome')).params.baseModel?.hash, m.manifest.hash);
        assert.equal(asked, m.manifest.hash);
        peer.conn.close();
      } finally {
        await c.close();
      }
    } finally {
      await cleanup();
    }
  });

  test("an offer that is not the federation's base model is refused at creation", async () => {
    const { dir, cleanup } = await tempRunDir();
    try {
      const files = m.manifest.files.slice(1);
      await assert.rejects(Coordinator.create({ ...modelConfig(dir, m), modelOffer: { ...m.offer(), files } }), { code: 'CONFIG_INVALID' });
    } finally {
      await cleanup();
    }
  });
});
