/**
 * Federation benchmark (docs/math.md §3): bytes on the wire vs raw tensor bytes, the FedEx downlink
 * (dense vs factored residual vs FedIT's adapter only), and the coordinator's round overhead with
 * 100 lightweight loopback clients (synthetic trainer, no model, ~1 MB adapters) in a child
 * process — from the last upload of a round to round_closed + the next round_start (or
 * federation_done) handed to every socket — asserting that no update is lost.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createOrtProductBackend } from '../src/runtime/kernels/factoredUpdate.js';
import type { StrategyName } from '../src/core/strategies/types.js';
import type { AdapterLayout } from '../src/federation/protocol/adapterTensors.js';
import { adapterBytes } from '../src/federation/shared/adapterWire.js';
import { FederationClient } from '../src/federation/client/client.js';
import { createSyntheticBase, createSyntheticTrainer } from '../src/federation/client/syntheticTrainer.js';
import { Coordinator } from '../src/federation/coordinator/coordinator.js';
import type { CoordinatorConfig } from '../src/federation/coordinator/config.js';
import type { RoundRecord } from '../src/federation/coordinator/events.js';
import type { BenchRow } from './aggregation.js';
import type { ClientsArgs, ClientsResult } from './federationClients.js';

export interface FederationBenchOptions {
  readonly smoke: boolean;
  readonly log: (line: string) => void;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const TOKEN = 'federation-bench-token';
const MB = 1e6;

function square(n: number, d: number, rank: number, prefix = 'layers'): AdapterLayout {
  return Array.from({ length: n }, (_, i) => ({ module: `${prefix}.${i}.proj`, in: d, out: d, rank, fanInFanOut: false }));
}

function gpt2(layers: number, d: number, rank: number): AdapterLayout {
  return Array.from({ length: layers }, (_, i) => [
    { module: `transformer.h.${i}.attn.c_attn`, in: d, out: 3 * d, rank, fanInFanOut: true },
    { module: `transformer.h.${i}.attn.c_proj`, in: d, out: d, rank, fanInFanOut: true },
  ]).flat();
}

function config(runDir: string, layout: AdapterLayout, method: StrategyName, clients: number, rounds: number, extra: Partial<CoordinatorConfig> = {}): CoordinatorConfig {
  return {
    runDir,
    method,
    rounds,
    layout,
    base: createSyntheticBase(layout, 1),
    lora: { rank: layout[0].rank, alpha: 2 * layout[0].rank, targetModules: ['proj'] },
    training: { localSteps: 1, batchSize: 1, lr: 1e-3 },
    token: TOKEN,
    minClients: clients,
    quorum: { fraction: 1 },
    roundTimeoutMs: 300_000,
    limits: { heartbeatMs: 30_000, maxFrameBytes: 512 * 1024 * 1024 },
    ...extra,
  };
}

/** Runs a federation with `clients` in-process clients; returns the round records. */
async function inProcess(layout: AdapterLayout, method: StrategyName, clients: number, rounds: number, factoredResidual: boolean): Promise<RoundRecord[]> {
  const dir = await mkdtemp(join(tmpdir(), 'fedex-bench-'));
  const backend = createOrtProductBackend();
  const cfg = config(join(dir, 'run'), layout, method, clients, rounds, { backend, deviationMetrics: false });
  const coordinator = await Coordinator.create(cfg);
  const records: RoundRecord[] = [];
  coordinator.on('round_closed', (r) => records.push(r));
  try {
    const url = await coordinator.start();
    const cs = Array.from({ length: clients }, (_, i) => new FederationClient({
      url,
      token: TOKEN,
      name: `c${i}`,
      clientId: `c${i}`,
      base: cfg.base,
      backend,
      factoredResidual,
      trainer: createSyntheticTrainer({ seed: i }),
      // A dense GPT-2-small residual is 113 MB: more than the protocol's default 64 MiB frame limit.
      maxFrameBytes: 512 * 1024 * 1024,
      reconnect: { maxAttempts: 5 },
    }));
    await Promise.all([coordinator.run(), ...cs.map((c) => c.run())]);
    return records;
  } finally {
    await coordinator.close();
    await backend.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

function runClients(args: ClientsArgs): { done: Promise<ClientsResult>; kill: () => void } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'federationClients.ts'), JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<ClientsResult>((resolve, reject) => child.on('close', (code) => {
    if (code === 0) resolve(JSON.parse(out.trim().split('\n').pop()!) as ClientsResult);
    else reject(new Error(`bench clients exited with ${code}: ${err.slice(-2000)}`));
  }));
  return { done, kill: () => child.kill() };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** The round-overhead case: `clients` clients in a child process, coordinator here. */
async function overhead(layout: AdapterLayout, method: StrategyName, clients: number, rounds: number, deviationMetrics: boolean, log: (l: string) => void): Promise<BenchRow> {
  const dir = await mkdtemp(join(tmpdir(), 'fedex-bench-'));
  const coordinator = await Coordinator.create(config(join(dir, 'run'), layout, method, clients, rounds, { deviationMetrics }));
  const records: RoundRecord[] = [];
  const overheads: number[] = [];
  const persists: number[] = [];
  const queued: number[] = [];
  const sent: number[] = [];
  coordinator.on('round_closed', (r) => {
    records.push(r);
    log(`federation: ${method} round ${r.round}: ${r.participants.length}/${clients} updates, aggregation ${r.aggregationMs.toFixed(0)} ms`);
  });
  coordinator.on('round_broadcast', (b) => {
    overheads.push(b.overheadMs);
    persists.push(b.persistMs);
    if (b.queuedMs !== undefined) queued.push(b.queuedMs);
    sent.push(b.bytes);
  });
  const child = runClients({ url: await coordinator.start(), token: TOKEN, clients, layout, baseSeed: 1, factoredResidual: true });
  try {
    const [, result] = await Promise.all([coordinator.run(), child.done]);
    const lost = records.filter((r) => r.participants.length !== clients).map((r) => `round ${r.round}: ${r.participants.length}/${clients}`);
    if (lost.length > 0 || result.completed !== clients) throw new Error(`federation bench: updates lost (${lost.join('; ')}), ${result.completed}/${clients} clients completed`);
    const down = median(records.map((r) => r.traffic.sent)) / clients;
    return {
      suite: 'federation',
      case: `round overhead, ${clients} loopback clients, ${(adapterBytes(layout) / MB).toFixed(2)} MB adapters`,
      impl: `${method}${deviationMetrics ? ' + deviation metrics' : ''}: last upload → round_closed + next round_start sent`,
      medianMs: median(overheads),
      minMs: Math.min(...overheads),
      peakRssMiB: null,
      note: `${records.length} rounds, no update lost; of which aggregation ${median(records.map((r) => r.aggregationMs)).toFixed(0)} ms, persist ${median(persists).toFixed(0)} ms, `
        + `coordinator done (every frame queued) after ${queued.length > 0 ? `${median(queued).toFixed(0)} ms` : '?'}, `
        + `broadcast ${(median(sent) / MB).toFixed(0)} MB (${(down / MB).toFixed(2)} MB/client); client process peak RSS ${result.maxRssMiB.toFixed(0)} MiB; target < 1000 ms`,
    };
  } finally {
    child.kill();
    await coordinator.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the federation suite; returns rows for the table. */
export async function federationBench(o: FederationBenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const none = { medianMs: NaN, minMs: NaN, peakRssMiB: null };

  // 1. Wire bytes vs raw tensor bytes (FedIT: the adapter both ways; FedEx: plus the residual).
  const wireLayout = square(o.smoke ? 4 : 24, 768, 8);
  for (const method of ['fedit', 'fedex'] as const) {
    o.log(`federation: wire overhead, ${method}, 3 clients`);
    const r = (await inProcess(wireLayout, method, 3, 2, true))[1];
    const t = r.traffic;
    const ratio = (t.wireSent + t.wireReceived) / (t.rawSent + t.rawReceived);
    rows.push({
      suite: 'federation',
      case: `wire bytes per round, 3 clients, ${wireLayout.length}×(768×768, r=8)`,
      impl: `${method}: TCP payload / raw tensor bytes`,
      ...none,
      note: `${ratio.toFixed(4)}× (${((t.rawSent + t.rawReceived) / MB).toFixed(2)} MB raw, ${((t.wireSent + t.wireReceived) / MB).toFixed(2)} MB on the wire; frames ${
        ((t.sent + t.received) / (t.rawSent + t.rawReceived)).toFixed(4)
      }×); target ≤ 1.02×`,
    });
  }

  // 2. Downlink per client and round: FedIT (adapter only), FedEx factored (P, Q) and dense residual.
  const g = o.smoke ? gpt2(2, 256, 8) : gpt2(12, 768, 8);
  const label = `GPT-2-shaped ${g.length / 2} layers c_attn+c_proj, r=8, 3 clients`;
  const down: Record<string, number> = {};
  for (const [name, method, factored] of [['fedit', 'fedit', true], ['fedex factored', 'fedex', true], ['fedex dense', 'fedex', false]] as const) {
    o.log(`federation: downlink, ${name}`);
    const r = (await inProcess(g, method, 3, 2, factored))[1];
    down[name] = r.traffic.sent / 3;
  }
  for (const name of Object.keys(down)) {
    rows.push({
      suite: 'federation',
      case: `downlink per client, round 2, ${label}`,
      impl: name,
      ...none,
      note: `${(down[name] / MB).toFixed(2)} MB (${(down[name] / down.fedit).toFixed(2)}× FedIT${name === 'fedex factored' ? `, ${(down['fedex dense'] / down[name]).toFixed(1)}× smaller than dense` : ''})`,
    });
  }

  // 3. Round overhead with many lightweight clients and ~1 MB adapters (8 × 512×512, r=32).
  const clients = o.smoke ? 10 : 100;
  const big = square(8, 512, 32);
  for (const [method, metrics] of [['fedit', false], ['fedex', false], ['fedit', true]] as const) {
    if (o.smoke && metrics) continue;
    o.log(`federation: ${clients} clients, ${method}${metrics ? ' with deviation metrics' : ''}`);
    rows.push(await overhead(big, method, clients, 3, metrics, o.log));
  }
  return rows;
}
