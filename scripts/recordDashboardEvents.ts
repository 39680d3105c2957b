// Records a real event stream for the dashboard: a simulation-shaped JSONL log (simulation_started,
// then per method a real Coordinator + FederationClient federation over loopback WebSockets with the
// synthetic trainer, every coordinator event tagged with its method, method_done, simulation_done).
// Used for the reducer test fixture and the preview page.
//
// Usage: node --import tsx scripts/recordDashboardEvents.ts [out.jsonl] [--rounds N] [--clients K] [--layers L] [--dim D] [--methods fedex,fedit]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTypeScriptBackend } from '../src/core/product.js';
import type { StrategyName } from '../src/core/strategies/types.js';
import { FederationClient } from '../src/federation/client/client.js';
import { createSyntheticBase, createSyntheticTrainer } from '../src/federation/client/syntheticTrainer.js';
import type { LocalTrainer } from '../src/federation/client/trainer.js';
import { Coordinator } from '../src/federation/coordinator/coordinator.js';
import type { CoordinatorEventName } from '../src/federation/coordinator/events.js';
import type { AdapterLayout } from '../src/federation/protocol/adapterTensors.js';
import { formatEventLine, type CliEventMap, type CliEventType, type SimulationMethod } from '../src/federation/events/events.js';

const args = process.argv.slice(2);
function flag(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
const out = args[0] !== undefined && !args[0].startsWith('--') ? args[0] : 'events.jsonl';
const rounds = Number(flag('rounds', '4'));
const clients = Number(flag('clients', '3'));
const layers = Number(flag('layers', '2'));
const methods = flag('methods', 'fedex,fedit').split(',') as StrategyName[];

// GPT-2-shaped modules (Conv1D, fan_in_fan_out), tiny: attention c_attn/c_proj and MLP c_fc/c_proj per layer.
const d = Number(flag('dim', '16'));
const layout: AdapterLayout = Array.from({ length: layers }, (_, l) => [
  { module: `transformer.h.${l}.attn.c_attn`, in: d, out: 3 * d, rank: 2, fanInFanOut: true },
  { module: `transformer.h.${l}.attn.c_proj`, in: d, out: d, rank: 2, fanInFanOut: true },
  { module: `transformer.h.${l}.mlp.c_fc`, in: d, out: 4 * d, rank: 2, fanInFanOut: true },
  { module: `transformer.h.${l}.mlp.c_proj`, in: 4 * d, out: d, rank: 2, fanInFanOut: true },
]).flat();
const base = createSyntheticBase(layout, 7);
const backend = createTypeScriptBackend();
const token = 'record-token-0123456789';
const lines: string[] = [];
const emit = <K extends CliEventType>(type: K, payload: CliEventMap[K], method?: SimulationMethod): void => {
  lines.push(formatEventLine(type, payload, method !== undefined ? { method } : {}));
};

// Listed by name (not CLI_EVENT_TYPES) so a recorder built against an older coordinator still runs.
const COORDINATOR_EVENTS: string[] = [
  'listening', 'client_joined', 'client_left', 'client_rejected', 'round_ready', 'round_started', 'update_accepted', 'update_rejected',
  'client_failed', 'round_closed', 'round_broadcast', 'update_heatmap', 'model_transfer', 'protocol_error', 'federation_done', 'warning',
];

/** Wraps a trainer to report client_round_done, as `fedex simulate` does. */
function reporting(inner: LocalTrainer, clientId: string, method: SimulationMethod): LocalTrainer {
  return {
    async train(round, global, baseInfo, config, signal) {
      const started = Date.now();
      const result = await inner.train(round, global, baseInfo, config, signal);
      emit('client_round_done', { clientId, round, trainLoss: result.trainLoss, examples: result.numExamples, steps: result.steps ?? 0, seconds: (Date.now() - started) / 1000 }, method);
      return result;
    },
  };
}

emit('simulation_started', { methods, clients, rounds, localSteps: 5, model: 'synthetic', data: 'task:synthetic', out: 'out', rank: 2, alpha: 4, seed: 0 });
const tmp = await mkdtemp(join(tmpdir(), 'fedex-record-'));
try {
  for (const method of methods) {
    const started = Date.now();
    emit('method_started', { method });
    const coordinator = await Coordinator.create({
      runDir: join(tmp, method), method, rounds, layout, lora: { rank: 2, alpha: 4, targetModules: ['c_attn', 'c_proj', 'c_fc'] },
      training: { localSteps: 5, batchSize: 4, lr: 1e-3 }, base, token, backend, minClients: clients, quorum: { fraction: 1 },
      roundTimeoutMs: 20_000, limits: { heartbeatMs: 500, helloTimeoutMs: 5_000 },
    });
    const events = coordinator as unknown as { on(name: string, listener: (payload: never) => void): void };
    for (const name of COORDINATOR_EVENTS) events.on(name, (payload) => emit(name as CoordinatorEventName, payload, method));
    const url = await coordinator.start();
    const runs = Array.from({ length: clients }, (_, i) => new FederationClient({
      url, token, name: `client ${i}`, clientId: `c${i}`, base, backend,
      trainer: reporting(createSyntheticTrainer({ seed: 100 + i, numExamples: 50 * (i + 1), noise: 0.05, lossStart: 2 + 0.4 * i }), `c${i}`, method),
      heartbeatMs: 500, reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
    }).run());
    try {
      await Promise.all([coordinator.run(), ...runs]);
    } finally {
      await coordinator.close();
    }
    emit('method_done', { method, evalLoss: Number.NaN, evalAccuracy: null, exactMatch: null, meanRelativeDeviation: null, bytesSent: 0, bytesReceived: 0, seconds: (Date.now() - started) / 1000 }, method);
  }
  emit('simulation_done', { reportJson: 'out/report.json', reportHtml: 'out/report.html' });
} finally {
  await rm(tmp, { recursive: true, force: true });
}
await writeFile(out, lines.join(''));
console.log(`recordDashboardEvents: ${lines.length} events → ${out}`);
