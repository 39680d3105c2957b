// Shared fixtures for the protocol tests: a small adapter layout, seeded random tensors, and one
// valid message of every method (the mapped type makes a missing method a compile error).
import { adapterTensorShapes, residualTensorShapes, type AdapterLayout, type ResidualEntry } from '../../../src/federation/protocol/adapterTensors.js';
import type { NamedTensor, OutgoingMessage } from '../../../src/federation/protocol/envelope.js';
import type { Method } from '../../../src/federation/protocol/messages.js';

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const LAYOUT: AdapterLayout = [
  { module: 'transformer.h.0.attn.c_attn', in: 8, out: 24, rank: 2, fanInFanOut: true },
  { module: 'transformer.h.0.attn.c_proj', in: 8, out: 8, rank: 2, fanInFanOut: true },
  { module: 'transformer.h.1.mlp.c_fc', in: 8, out: 16, rank: 4, fanInFanOut: true },
];

export const HASH = 'ab'.repeat(32);

/** Random float32 tensors for a name → shape map, values in (−1, 1). */
export function randomTensors(shapes: Map<string, readonly number[]>, seed: number): NamedTensor[] {
  const next = rng(seed);
  return [...shapes].map(([name, shape]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = next() * 2 - 1;
    return { name, shape, data };
  });
}

export const RESIDUALS: readonly ResidualEntry[] = [
  { module: 'transformer.h.0.attn.c_attn', form: 'factored', innerDim: 4, scale: 8 },
  { module: 'transformer.h.0.attn.c_proj', form: 'dense', innerDim: 0, scale: 8 },
];

/** The global adapter plus the RESIDUALS tensors, for round_start / federation_done. */
export function globalTensors(seed: number): NamedTensor[] {
  const shapes = adapterTensorShapes(LAYOUT);
  for (const [k, v] of residualTensorShapes(RESIDUALS, LAYOUT)) shapes.set(k, v);
  return randomTensors(shapes, seed);
}

export function welcomeParams(): OutgoingMessage<'welcome'>['params'] {
  return {
    sessionId: 's-123',
    protocolMinor: 0,
    currentRound: 0,
    config: {
      method: 'fedex',
      rounds: 3,
      localSteps: 20,
      batchSize: 8,
      rank: 2,
      alpha: 16,
      rsLora: false,
      targetModules: ['c_attn', 'c_proj', 'c_fc'],
      lr: 1e-3,
      seed: 42,
      weighting: 'uniform',
      resetOptimizer: true,
      uplinkDtype: 'float32',
      baseModelHash: HASH,
      layout: LAYOUT.map((m) => ({ ...m, fanInFanOut: m.fanInFanOut ?? false })),
    },
    limits: { maxFrameBytes: 1 << 20, maxChunkBytes: 1 << 16, heartbeatMs: 5000, maxUpdateNorm: 100 },
    baseModel: { hash: HASH, files: [{ name: 'model.safetensors', bytes: 1000, sha256: 'cd'.repeat(32) }] },
  };
}

/** One valid message of every method. */
export function sampleMessages(): { [M in Method]: OutgoingMessage<M> } {
  return {
    hello: { method: 'hello', params: {
      protocolMajor: 1,
      protocolMinor: 0,
      token: 'tok_abc-123',
      clientName: 'Ada’s laptop ⚡',
      clientId: 'c1',
      device: 'cuda:0',
      baseModelHash: HASH,
      baseRevision: 0,
      capabilities: { uplinkDtypes: ['float32', 'bfloat16'], factoredResidual: true, modelTransfer: true, maxFrameBytes: 1 << 20 },
    } },
    welcome: { method: 'welcome', params: welcomeParams() },
    reject: { method: 'reject', params: { code: 'E_AUTH', message: 'wrong token', retryAfterMs: 1000 } },
    round_start: { method: 'round_start', params: { round: 2, deadline: 1_700_000_000_000, timeLimitMs: 600_000, baseRevision: 1, baseUpdate: { fromRevision: 0, modules: RESIDUALS } }, tensors: globalTensors(1) },
    client_update: { method: 'client_update', params: { round: 2, examples: 128, trainLoss: 2.5, steps: 20, durationMs: 1234, metrics: { evalLoss: 2.4, 'acc/top1': 0.5 } }, tensors: randomTensors(adapterTensorShapes(LAYOUT), 2) },
    client_failed: { method: 'client_failed', params: { round: 2, reason: 'trainer: out of memory at batch 8' } },
    update_ack: { method: 'update_ack', params: { round: 2 } },
    update_rejected: { method: 'update_rejected', params: { round: 2, code: 'E_ROUND_CLOSED', reason: 'round 2 closed at 12:00' } },
    round_closed: { method: 'round_closed', params: {
      round: 2,
      participants: 3,
      dropped: 1,
      durationMs: 60_000,
      baseRevision: 2,
      aggregated: true,
      loss: { mean: 2.1, min: 1.9, max: 2.4 },
      modules: [{ module: 'transformer.h.0.attn.c_attn', deviation: 0.25, relativeDeviation: 0.1, residualNorm: 0.03125 }],
    } },
    ping: { method: 'ping', params: { nonce: 7, sentAt: 1_700_000_000_123 } },
    pong: { method: 'pong', params: { nonce: 7 } },
    leave: { method: 'leave', params: { reason: 'user closed the window' } },
    federation_done: { method: 'federation_done', params: { roundsCompleted: 3, reason: 'completed', baseRevision: 3, baseUpdate: { fromRevision: 2, modules: RESIDUALS } }, tensors: globalTensors(3) },
    error: { method: 'error', params: { code: 'E_SCHEMA', message: 'bad', fatal: false, round: 2 } },
    model_request: { method: 'model_request', params: { hash: HASH, file: 0, offset: 0, length: 100 } },
    model_chunk: { method: 'model_chunk', params: { hash: HASH, file: 0, offset: 0 }, blob: Uint8Array.from({ length: 100 }, (_, i) => (i * 37) & 0xff) },
    challenge: { method: 'challenge', params: { nonce: 'n'.repeat(43), issuedAt: 1_700_000_000_000 } },
    challenge_response: { method: 'challenge_response', params: { signature: 'S'.repeat(86), signedAt: 1_700_000_000_500 } },
  };
}
