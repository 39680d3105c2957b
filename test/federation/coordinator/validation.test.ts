// Every inbound message is validated: a hand-driven peer sends bad, late and duplicated uploads,
// wrong tokens, wrong versions, malformed, text and oversized frames; each gets its typed answer
// and the coordinator keeps serving.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { adapterTensorShapes } from '../../../src/federation/protocol/adapterTensors.js';
import { encodeMessage } from '../../../src/federation/protocol/codec.js';
import { PREFIX_BYTES } from '../../../src/federation/protocol/constants.js';
import type { NamedTensor } from '../../../src/federation/protocol/envelope.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import type { RoundRecord } from '../../../src/federation/coordinator/events.js';
import { FederationClient } from '../../../src/federation/client/client.js';
import { ClientError } from '../../../src/federation/client/errors.js';
import { LAYOUT, clientOptions, coordinatorConfig, tempRunDir } from './fixtures.js';
import { RawPeer } from './rawPeer.js';
import { rawEncode } from '../protocol/craft.js';

function adapter(value: (i: number) => number, layout = LAYOUT): NamedTensor[] {
  return [...adapterTensorShapes(layout)].map(([name, shape]) => {
    const data = new Float32Array(shape[0] * shape[1]);
    for (let i = 0; i < data.length; i++) data[i] = value(i);
    return { name, shape, data };
  });
}

/** A valid client_update frame whose first tensor value is then overwritten with NaN. */
function nanUpdate(round: number): Uint8Array {
  const frame = encodeMessage({ method: 'client_update', params: { round, examples: 1, trainLoss: 1 }, tensors: adapter(() => 0.01) });
  const h = new DataView(frame.buffer, frame.byteOffset).getUint32(8, true);
  new DataView(frame.buffer, frame.byteOffset).setFloat32(PREFIX_BYTES + h, NaN, true);
  return frame;
}

async function withCoordinator(overrides: Parameters<typeof coordinatorConfig>[1], body: (c: Coordinator, url: string, records: RoundRecord[]) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempRunDir();
  const coordinator = await Coordinator.create(coordinatorConfig(dir, { minClients: 1, quorum: { count: 1 }, ...overrides }));
  const records: RoundRecord[] = [];
  coordinator.on('round_closed', (r) => records.push(r));
  try {
    await body(coordinator, await coordinator.start(), records);
  } finally {
    await coordinator.close();
    await cleanup();
  }
}

describe('coordinator input validation', { timeout: 20_000 }, () => {
  test('bad uploads get update_rejected with their code; late and duplicate uploads too', async () => {
    await withCoordinator({ rounds: 4, maxUpdateNorm: 50 }, async (coordinator, url, records) => {
      const peer = await RawPeer.connect(url);
      await peer.hello();
      await peer.next('welcome');
      const running = coordinator.run();
      running.catch(() => undefined);
      const rejected = async (round: number): Promise<[string, string]> => {
        const m = await peer.next('update_rejected');
        assert.equal(m.params.round, round);
        return [m.params.code, m.params.reason];
      };

      assert.equal((await peer.next('round_start')).params.round, 1);
      await peer.sendBytes(nanUpdate(1));
      const [nanCode, nanReason] = await rejected(1);
      assert.equal(nanCode, 'E_NON_FINITE');
      assert.match(nanReason, /lora_A holds NaN at flat index 0/);
      assert.equal((await peer.next('round_closed')).params.participants, 0);
      await peer.send({ method: 'client_update', params: { round: 1, examples: 1, trainLoss: 1 }, tensors: adapter(() => 0.01) });
      assert.deepEqual((await rejected(1))[0], 'E_ROUND_CLOSED');

      assert.equal((await peer.next('round_start')).params.round, 2);
      await peer.send({ method: 'client_update', params: { round: 2, examples: 1, trainLoss: 1 }, tensors: adapter(() => 10) });
      const [normCode, normReason] = await rejected(2);
      assert.equal(normCode, 'E_NORM_BOUND');
      assert.match(normReason, /exceeds the bound 50/);

      assert.equal((await peer.next('round_start')).params.round, 3);
      const wrong = LAYOUT.map((m, i) => (i === 0 ? { ...m, in: m.in - 1 } : m));
      await peer.send({ method: 'client_update', params: { round: 3, examples: 1, trainLoss: 1 }, tensors: adapter(() => 0.01, wrong) });
      const [shapeCode, shapeReason] = await rejected(3);
      assert.equal(shapeCode, 'E_TENSOR_SHAPE');
      assert.match(shapeReason, /transformer\.h\.0\.attn\.c_attn\.lora_A has shape \[2, 15\], expected \[2, 16\]/);

      assert.equal((await peer.next('round_start')).params.round, 4);
      const good = { method: 'client_update' as const, params: { round: 4, examples: 1, trainLoss: 1 }, tensors: adapter((i) => 0.001 * (i % 7)) };
      await peer.send(good);
      assert.equal((await peer.next('update_ack')).params.round, 4);
      await peer.send(good);
      assert.equal((await rejected(4))[0], 'E_DUPLICATE');
      await peer.next('federation_done');
      await running;
      assert.deepEqual(records.map((r) => r.participants.length), [0, 0, 0, 1]);
      assert.deepEqual(records.map((r) => r.aggregated), [false, false, false, true]);
    });
  });

  test('protocol 1.1: an FFA upload whose A moved gets E_FROZEN_A naming the module; a bad-field upload gets update_rejected; client_failed closes the round at once', async () => {
    await withCoordinator({ rounds: 3, method: 'ffa', roundTimeoutMs: 60_000 }, async (coordinator, url, records) => {
      const peer = await RawPeer.connect(url);
      await peer.hello({ protocolMinor: 1 });
      const welcome = await peer.next('welcome');
      assert.equal(welcome.params.protocolMinor, 1);
      assert.equal(welcome.params.limits.maxProtocolErrors, 16);
      const running = coordinator.run();
      running.catch(() => undefined);
      const start = await peer.next('round_start');
      // The global adapter with one value of one module's A changed: FFA must upload A unchanged.
      const moved = start.tensors.filter((t) => !t.name.includes('residual')).map((t) => ({ ...t, data: Float32Array.from(t.data) }));
      const target = moved.find((t) => t.name === `${LAYOUT[1].module}.lora_A`)!;
      target.data[3] += 1e-3;
      await peer.send({ method: 'client_update', params: { round: 1, examples: 1, trainLoss: 1 }, tensors: moved });
      const r1 = await peer.next('update_rejected');
      assert.equal(r1.params.code, 'E_FROZEN_A');
      assert.match(r1.params.reason, new RegExp(`module ${LAYOUT[1].module.replace(/\./g, '\\.')}: lora_A differs .* at \\[0, 3\\]`));
      const c1 = await peer.next('round_closed');
      assert.deepEqual([c1.params.participants, c1.params.aggregated], [0, false], 'the rejected upload used up the round: it closed at once, not aggregated');

      await peer.next('round_start');
      // A well-framed upload with a bad field (negative examples) names its round: update_rejected, not a bare error.
      await peer.sendBytes(rawEncode({ method: 'client_update', params: { round: 2, examples: -1, trainLoss: 1 }, tensors: adapter(() => 0.01) }));
      const r2 = await peer.next('update_rejected');
      assert.deepEqual([r2.params.round, r2.params.code], [2, 'E_SCHEMA']);
      assert.equal((await peer.next('round_closed')).params.aggregated, false);

      const s3 = await peer.next('round_start');
      const t0 = Date.now();
      await peer.send({ method: 'client_failed', params: { round: 3, reason: 'trainer: out of memory' } });
      const c3 = await peer.next('round_closed');
      assert.ok(Date.now() - t0 < 5_000 && s3.params.timeLimitMs > 50_000, 'closed by client_failed, long before the deadline');
      assert.deepEqual([c3.params.round, c3.params.participants, c3.params.aggregated], [3, 0, false]);
      await peer.next('federation_done');
      await running;
      assert.deepEqual(records.map((r) => r.aggregated), [false, false, false]);
      assert.match(records[2].failures[0].reason, /^training failed: trainer: out of memory$/);
    });
  });

  test('FFA-LoRA with a half-precision uplink is refused when the federation is configured', async () => {
    const { dir, cleanup } = await tempRunDir();
    try {
      await assert.rejects(Coordinator.create(coordinatorConfig(dir, { method: 'ffa', uplinkDtype: 'bfloat16' })),
        (e: unknown) => (e as { code?: string }).code === 'CONFIG_INVALID' && /ffa needs a float32 uplink/.test((e as Error).message));
    } finally {
      await cleanup();
    }
  });

  test('wrong token → E_AUTH, wrong major version in hello or frame → E_VERSION, foreign base → E_BASE_MISMATCH', async () => {
    await withCoordinator({ rounds: 1 }, async (_c, url) => {
      const cases: [string, (p: RawPeer) => Promise<void>, string][] = [
        ['token', (p) => p.hello({ token: 'wrong-token' }), 'E_AUTH'],
        ['hello major', (p) => p.hello({ protocolMajor: 2 }), 'E_VERSION'],
        ['frame major', async (p) => {
          const f = encodeMessage({ method: 'ping', params: { nonce: 1, sentAt: 0 } });
          new DataView(f.buffer, f.byteOffset).setUint16(4, 2, true);
          await p.sendBytes(f);
        }, 'E_VERSION'],
        ['base', (p) => p.hello({ baseModelHash: 'f'.repeat(64) }), 'E_BASE_MISMATCH'],
      ];
      for (const [what, act, code] of cases) {
        const peer = await RawPeer.connect(url);
        await act(peer);
        const reject = await peer.next('reject');
        assert.equal(reject.params.code, code, what);
        assert.equal((await peer.closed).code, 1008, what);
      }
      const client = new FederationClient(clientOptions(url, 0, { token: 'not-the-token', reconnect: { maxAttempts: 1 } }));
      await assert.rejects(client.run(), (err: unknown) => err instanceof ClientError && err.code === 'E_AUTH' && /join token is wrong/.test(err.message));
    });
  });

  test('malformed, text and oversized frames get an error or a close; the server keeps serving', async () => {
    await withCoordinator({ rounds: 1, limits: { maxFrameBytes: 64 * 1024, heartbeatMs: 200 } }, async (coordinator, url, records) => {
      const peer = await RawPeer.connect(url);
      await peer.hello();
      await peer.next('welcome');
      await peer.sendBytes(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]));
      const e1 = await peer.next('error');
      assert.deepEqual([e1.params.code, e1.params.fatal], ['E_MAGIC', false]);
      const bad = encodeMessage({ method: 'ping', params: { nonce: 1, sentAt: 0 } });
      bad[PREFIX_BYTES] = 0x5b; // '{' → '[': not a JSON object any more
      await peer.sendBytes(bad);
      assert.equal((await peer.next('error')).params.code, 'E_MALFORMED');
      await peer.sendBytes(new Uint8Array(64 * 1024 + 1));
      const big = await peer.closed;
      assert.deepEqual([big.code, big.cause], [1009, 'too_large']);

      const texter = new WebSocket(url);
      await new Promise((resolve) => texter.once('open', resolve));
      texter.send('{"method": "hello"}');
      const [code] = await new Promise<[number]>((resolve) => texter.once('close', (c) => resolve([c])));
      assert.equal(code, 1003, 'a text message closes the connection with 1003');

      const client = new FederationClient(clientOptions(url, 0));
      const [, outcome] = await Promise.all([coordinator.run(), client.run()]);
      assert.equal(outcome.reason, 'completed');
      assert.deepEqual(records[0].participants, ['c0']);
    });
  });

  test('a connection that never says hello is dropped with E_TIMEOUT; a full federation answers E_FULL with a retry hint', async () => {
    await withCoordinator({ rounds: 1, maxClients: 1, limits: { heartbeatMs: 200, helloTimeoutMs: 150 } }, async (_c, url) => {
      const silent = await RawPeer.connect(url);
      const started = Date.now();
      assert.equal((await silent.next('reject')).params.code, 'E_TIMEOUT');
      assert.ok(Date.now() - started < 1000);
      const first = await RawPeer.connect(url);
      await first.hello({ clientId: 'first' });
      await first.next('welcome');
      const second = await RawPeer.connect(url);
      await second.hello({ clientId: 'second' });
      const full = await second.next('reject');
      assert.deepEqual([full.params.code, full.params.retryAfterMs], ['E_FULL', 30_000]);
      // The same client on a new connection is not "another" client: it replaces its old connection.
      const again = await RawPeer.connect(url);
      await again.hello({ clientId: 'first' });
      await again.next('welcome');
      assert.equal((await first.closed).code, 4000);
    });
  });
});
