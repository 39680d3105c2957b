// Shared fixtures of the federation tests: a small layout mixing both weight layouts and both
// residual forms, a coordinator config on a temp run dir, clients with the synthetic trainer, and
// float64 references.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoraFactors } from '../../../src/core/lora.js';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import type { Matrix } from '../../../src/core/tensor.js';
import type { AdapterLayout } from '../../../src/federation/protocol/adapterTensors.js';
import { FederationClient, type FederationClientOptions } from '../../../src/federation/client/client.js';
import { createSyntheticBase, createSyntheticTrainer, type SyntheticBase } from '../../../src/federation/client/syntheticTrainer.js';
import type { BaseUpdateInfo, LocalTrainer, TrainConfig, TrainResult } from '../../../src/federation/client/trainer.js';
import type { Adapter } from '../../../src/core/lora.js';
import type { CoordinatorConfig } from '../../../src/federation/coordinator/config.js';

/** c_attn (Conv1D, factored residual), c_proj (Conv1D, square, factored), down_proj (Linear, dense residual for 3 clients). */
export const LAYOUT: AdapterLayout = [
  { module: 'transformer.h.0.attn.c_attn', in: 16, out: 48, rank: 2, fanInFanOut: true },
  { module: 'transformer.h.0.attn.c_proj', in: 16, out: 16, rank: 2, fanInFanOut: true },
  { module: 'model.layers.0.mlp.down_proj', in: 40, out: 12, rank: 4, fanInFanOut: false },
];

export const TOKEN = 'test-token-0123456789';
export const BASE: SyntheticBase = createSyntheticBase(LAYOUT, 7);
export const backend = createTypeScriptBackend();

export async function tempRunDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fedex-coord-'));
  return { dir: join(dir, 'run'), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function coordinatorConfig(runDir: string, overrides: Partial<CoordinatorConfig> = {}): CoordinatorConfig {
  return {
    runDir,
    method: 'fedex',
    rounds: 3,
    layout: LAYOUT,
    lora: { rank: 2, alpha: 4, targetModules: ['c_attn', 'c_proj', 'down_proj'] },
    training: { localSteps: 5, batchSize: 4, lr: 1e-3 },
    base: BASE,
    token: TOKEN,
    backend,
    minClients: 3,
    quorum: { fraction: 0.5 },
    roundTimeoutMs: 8_000,
    limits: { heartbeatMs: 200, helloTimeoutMs: 2_000 },
    ...overrides,
  };
}

/** What a recording trainer saw and returned, per round. */
export interface Seen {
  readonly base: Map<string, Matrix<Float32Array>>;
  readonly baseRevision: number;
  readonly result: TrainResult;
}

/** Wraps a trainer and records, per round, a copy of the base it trained on and its result. */
export function recording(inner: LocalTrainer, seen: Map<number, Seen>): LocalTrainer {
  return {
    async train(round: number, global: Adapter, base: BaseUpdateInfo, config: TrainConfig, signal: AbortSignal): Promise<TrainResult> {
      const copy = new Map([...base.modules].map(([k, m]) => [k, { shape: m.shape, data: Float32Array.from(m.data) } as Matrix<Float32Array>]));
      const result = await inner.train(round, global, base, config, signal);
      seen.set(round, { base: copy, baseRevision: base.revision, result });
      return result;
    },
  };
}

export function clientOptions(url: string, i: number, overrides: Partial<FederationClientOptions> = {}): FederationClientOptions {
  return {
    url,
    token: TOKEN,
    name: `client ${i}`,
    clientId: `c${i}`,
    base: BASE,
    backend,
    trainer: createSyntheticTrainer({ seed: 100 + i, numExamples: 50 * (i + 1) }),
    heartbeatMs: 200,
    reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
    ...overrides,
  };
}

/** Starts `n` clients; returns them and their run() promises. */
export function startClients(url: string, n: number, options: (i: number) => Partial<FederationClientOptions> = () => ({})): { clients: FederationClient[]; runs: Promise<unknown>[] } {
  const clients = Array.from({ length: n }, (_, i) => new FederationClient(clientOptions(url, i, options(i))));
  return { clients, runs: clients.map((c) => c.run()) };
}

/** Resolves on the first `event` emitted by `emitter` that satisfies `pred`; rejects after `ms`. */
export function waitFor<T>(emitter: { on(e: string, l: (p: T) => void): unknown; off(e: string, l: (p: T) => void): unknown }, event: string, pred: (p: T) => boolean = () => true, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out after ${ms} ms waiting for ${event}`));
    }, ms);
    const listener = (p: T): void => {
      if (!pred(p)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(p);
    };
    emitter.on(event, listener);
  });
}

/** Float64 effective weight W + s·B·A (or its transpose added to an in × out W), stored layout. */
export function effective(w: Matrix, f: LoraFactors, scale: number, fanInFanOut: boolean): Float64Array {
  const [out, r] = f.b.shape;
  const inF = f.a.shape[1];
  const e = Float64Array.from(w.data);
  for (let o = 0; o < out; o++) {
    for (let x = 0; x < inF; x++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += f.b.data[o * r + j] * f.a.data[j * inF + x];
      e[fanInFanOut ? x * out + o : o * inF + x] += scale * s;
    }
  }
  return e;
}

/** Float64 s·B·A (out × in); s = 1 unless given. */
export function product64(b: Matrix, a: Matrix, scale = 1): Float64Array {
  const [out, r] = b.shape;
  const inF = a.shape[1];
  const y = new Float64Array(out * inF);
  for (let o = 0; o < out; o++)
    for (let x = 0; x < inF; x++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += b.data[o * r + j] * a.data[j * inF + x];
      y[o * inF + x] = scale * s;
    }
  return y;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
