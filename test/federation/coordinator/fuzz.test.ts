// A bounded fuzz loop against a live coordinator: 300 frames of random bytes and of randomly
// mutated valid frames, from connections that reconnect whenever the coordinator closes them. The
// server must stay up, and a well-behaved client must still complete a round afterwards.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRng } from '../../../src/core/random.js';
import { encodeMessage } from '../../../src/federation/protocol/codec.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import { FederationClient } from '../../../src/federation/client/client.js';
import { BASE, TOKEN, clientOptions, coordinatorConfig, tempRunDir, waitFor } from './fixtures.js';
import { RawPeer } from './rawPeer.js';

const SEEDS = [
  encodeMessage({ method: 'ping', params: { nonce: 7, sentAt: 1 } }),
  encodeMessage({ method: 'leave', params: { reason: 'x' } }),
  encodeMessage({
    method: 'hello',
    params: { protocolMajor: 1, protocolMinor: 0, token: TOKEN, clientName: 'fuzz', device: 'cpu', baseModelHash: BASE.hash, capabilities: { uplinkDtypes: ['float32'], factoredResidual: true, modelTransfer: false, maxFrameBytes: 8192 } },
  }),
  encodeMessage({ method: 'client_update', params: { round: 1, examples: 1, trainLoss: 1 },
    tensors: [{ name: 'm.lora_A', shape: [1, 2], data: new Float32Array([1, 2]) }, { name: 'm.lora_B', shape: [2, 1], data: new Float32Array([3, 4]) }] }),
];

function fuzzFrame(rng: ReturnType<typeof createRng>): Uint8Array {
  if (rng.next() < 0.3) return Uint8Array.from({ length: rng.int(200) }, () => rng.int(256));
  const f = Uint8Array.from(SEEDS[rng.int(SEEDS.length)]);
  const flips = 1 + rng.int(6);
  for (let i = 0; i < flips; i++) f[rng.int(f.length)] = rng.int(256);
  return rng.next() < 0.2 ? f.subarray(0, rng.int(f.length)) : f;
}

test('300 fuzzed frames: the coordinator stays up and a well-behaved client then completes a round', { timeout: 20_000 }, async () => {
  const { dir, cleanup } = await tempRunDir();
  const coordinator = await Coordinator.create(coordinatorConfig(dir, { rounds: 1, minClients: 1, quorum: { count: 1 }, limits: { heartbeatMs: 200, maxProtocolErrors: 8 } }));
  const codes = new Map<string, number>();
  coordinator.on('protocol_error', (e) => codes.set(e.code, (codes.get(e.code) ?? 0) + 1));
  try {
    const url = await coordinator.start();
    const rng = createRng(1234);
    let peer: RawPeer | undefined;
    let connections = 0;
    for (let i = 0; i < 300; i++) {
      if (peer === undefined || !peer.conn.isOpen) {
        peer = await RawPeer.connect(url);
        connections++;
        // Mostly a valid hello first (fuzzing the joined state machine), sometimes fuzz the handshake itself.
        if (rng.next() < 0.8) {
          await peer.hello({ clientId: `fuzz${connections}` });
          await peer.next('welcome');
        }
      }
      await peer.sendBytes(fuzzFrame(rng)).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    peer?.conn.close();
    await peer?.closed;
    assert.ok(connections > 5, 'connections were closed after too many errors or a fuzzed handshake');
    assert.ok([...codes.values()].reduce((a, b) => a + b, 0) >= 150, `protocol errors reported: ${JSON.stringify([...codes])}`);

    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(coordinator.joined.size, 0, 'no fuzz peer is still joined');
    const client = new FederationClient(clientOptions(url, 0));
    const clientRun = client.run();
    await waitFor(coordinator, 'client_joined');
    const [summary, outcome] = await Promise.all([coordinator.run(), clientRun]);
    assert.equal(summary.roundsCompleted, 1);
    assert.equal(outcome.reason, 'completed');
  } finally {
    await coordinator.close();
    await cleanup();
  }
});
