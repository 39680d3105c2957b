// runSimulation end to end on the model-free synthetic workload (real coordinator and clients over
// loopback WebSockets, real aggregation; only training is synthetic): the report's contents, the
// event stream, and the saved adapters, which `fedex aggregate` (aggregateFolders) must reproduce.
import { createBlockwiseUpdater } from '../../helpers/blockwiseUpdater.js';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { aggregateFolders } from '../../../src/federation/offline/aggregateFolders.js';
import { readPeftAdapter } from '../../../src/formats/peft.js';
import type { EventSink } from '../../../src/federation/events/eventSink.js';
import type { CliEventType, SimulationMethod } from '../../../src/federation/events/events.js';
import { CLI_EVENT_TYPES } from '../../helpers/eventTypes.js';
import type { SimulationReport } from '../../../src/federation/simulation/report.js';
import { roundDir } from '../../../src/federation/shared/adapterFolders.js';
import { runSimulation, type SimulationResult } from '../../../src/federation/simulation/simulate.js';
import { createSyntheticWorkload } from '../../../src/federation/simulation/syntheticWorkload.js';
import { suiteTempDir } from '../../helpers/tempDir.js';
import { checkSavedRound, readBase } from './savedRounds.js';

const ROUNDS = 2;
const CLIENTS = 3;

describe('runSimulation (synthetic workload, 3 clients × 2 rounds, all four methods)', { timeout: 30_000 }, () => {
  const workload = createSyntheticWorkload({ rank: 4, alpha: 8, seed: 1 });
  after(() => workload.dispose());
  const tmp = suiteTempDir('simulate');
  let result: SimulationResult;
  const events: { type: CliEventType; payload: Record<string, unknown>; method: SimulationMethod | undefined }[] = [];
  /** Collects each event in process, as the simulation emits it. */
  const sink: EventSink = {
    emit: (type, payload, method) => events.push({ type, payload: payload as unknown as Record<string, unknown>, method }),
    close: async () => undefined,
  };

  before(async () => {
    result = await runSimulation({
      methods: ['fedex', 'fedit', 'ffa', 'centralized'],
      clients: CLIENTS,
      rounds: ROUNDS,
      localSteps: 3,
      batchSize: 4,
      lr: 0.01,
      rank: 4,
      alpha: 8,
      seed: 1,
      out: tmp.path,
      saveAdapters: true,
      workload,
      labels: { model: 'synthetic', data: 'none', split: 'non-iid', device: 'cpu' },
      sink,
      backend: createTypeScriptBackend(),
      chartJsSource: '/* chart.js stand-in */',
    });
  });

  test('report.json holds every method with round 0..R, the comparison and consistent totals', async () => {
    const report = JSON.parse(await readFile(result.reportJson, 'utf8')) as SimulationReport;
    assert.equal(report.format, 'fedex-simulation-report');
    assert.deepEqual(report.comparison.map((m) => m.method), ['fedex', 'fedit', 'ffa', 'centralized']);
    for (const m of report.methods) {
      assert.deepEqual(m.rounds.map((r) => r.round), [0, 1, 2], m.method);
      assert.equal(m.summary.evalLoss, m.rounds[ROUNDS].evalLoss, `${m.method}: the final eval loss is the last round's`);
      assert.ok(Number.isFinite(m.summary.evalLoss));
      if (m.method !== 'centralized') {
        assert.equal(m.summary.bytesSent, m.rounds.reduce((a, r) => a + r.bytesSent, 0));
        assert.ok(m.summary.bytesReceived > 0 && m.summary.bytesSent > 0, `${m.method}: bytes were counted`);
        assert.equal(m.rounds[1].participants, CLIENTS);
        assert.equal(m.rounds[1].modules.length, workload.layout.length);
        assert.deepEqual(m.rounds[1].layers.map((l) => l.layer), [0, 1]);
      } else {
        assert.equal(m.summary.bytesSent, 0);
        assert.equal(m.summary.meanRelativeDeviation, null);
      }
    }
    const byMethod = new Map(report.comparison.map((m) => [m.method, m]));
    // Same clients, same perturbations: FedEx and FedIT lose the same share in round 1; FFA-LoRA none (A is shared).
    assert.ok(byMethod.get('fedit')!.meanRelativeDeviation! > 1e-3);
    assert.ok(byMethod.get('ffa')!.meanRelativeDeviation! < 1e-6);
    // FedEx sends the residual down from round 2 on; FedIT never does. Uplinks are the same size.
    assert.ok(byMethod.get('fedex')!.bytesSent > byMethod.get('fedit')!.bytesSent);
    assert.equal(byMethod.get('fedex')!.bytesReceived, byMethod.get('fedit')!.bytesReceived);
    // All methods start from the same initial model.
    assert.equal(new Set(report.methods.map((m) => m.rounds[0].evalLoss)).size, 1);
  });

  test('report.html is self-contained: the chart source inline, the data embedded, no external resources', async () => {
    const html = await readFile(result.reportHtml, 'utf8');
    assert.ok(html.includes('/* chart.js stand-in */'));
    assert.ok(html.includes('<script type="application/json" id="report-data">'));
    assert.ok(!/<script[^>]+src=|<link[^>]+href=|https?:\/\//.test(html.replace(/<script type="application\/json"[\s\S]*?<\/script>/, '')), 'no external scripts, styles or URLs');
    assert.ok(html.includes('chart-dev-0') && html.includes('chart-dev-1') && !html.includes('chart-dev-2'), 'deviation charts for fedex and fedit, none for ffa (zero deviation)');
  });

  test('the event stream: documented types only, method on every event of a method, one method_done each', () => {
    const known = new Set<string>(CLI_EVENT_TYPES);
    for (const e of events) assert.ok(known.has(e.type), e.type);
    assert.equal(events[0].type, 'simulation_started');
    assert.equal(events[events.length - 1].type, 'simulation_done');
    for (const e of events.slice(1, -1)) assert.ok(e.method !== undefined, `${e.type} carries its method`);
    const types = new Set(events.map((e) => e.type));
    for (const t of ['method_started', 'listening', 'client_joined', 'round_started', 'update_accepted', 'round_closed', 'client_progress', 'client_round_done', 'round_evaluated', 'method_done', 'federation_done'] as const) {
      assert.ok(types.has(t), `has ${t}`);
    }
    assert.deepEqual(events.filter((e) => e.type === 'method_done').map((e) => e.method), ['fedex', 'fedit', 'ffa', 'centralized']);
    assert.equal(events.filter((e) => e.type === 'round_evaluated').length, 4 * ROUNDS);
  });

  test('--save-adapters: FedEx global model = mean of the client models (float64 check), and fedex aggregate reproduces the round', async () => {
    const dir = join(tmp.path, 'adapters', 'fedex');
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of await checkSavedRound(dir, round, workload.layout)) {
        assert.ok(c.size > 1e-4, `${c.module}: the round changed the model`);
        assert.ok(c.err <= 1e-5 * c.size + 5e-8, `round ${round} ${c.module}: error ${c.err} vs update ${c.size}`);
      }
    }
    const clients = (await readdir(join(roundDir(dir, 2), 'clients'))).sort().map((c) => join(roundDir(dir, 2), 'clients', c));
    const out = join(tmp.path, 'offline');
    await aggregateFolders({ method: 'fedex', base: join(roundDir(dir, 1), 'base'), adapters: clients, out, updater: createBlockwiseUpdater(createTypeScriptBackend()) });
    const offlineGlobal = await readPeftAdapter(join(out, 'adapter'));
    const onlineGlobal = await readPeftAdapter(join(roundDir(dir, 2), 'global'));
    for (const m of onlineGlobal.modules) {
      const o = offlineGlobal.modules.find((x) => x.modulePath === m.modulePath)!;
      assert.deepEqual(o.A.data, m.A.data, `${m.modulePath}: Ā`);
      assert.deepEqual(o.B.data, m.B.data, `${m.modulePath}: B̄`);
    }
    const offlineBase = await readBase(out, workload.layout);
    const onlineBase = await readBase(join(roundDir(dir, 2), 'base'), workload.layout);
    for (const m of workload.layout) {
      const a = offlineBase.get(m.module)!;
      const b = onlineBase.get(m.module)!;
      let diff = 0;
      for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
      assert.ok(diff <= 1e-7, `${m.module}: offline and online FedEx bases differ by ${diff}`);
    }
  });

  test('FedIT saved rounds are not exact: the global model misses the mean of the clients', async () => {
    const checks = await checkSavedRound(join(tmp.path, 'adapters', 'fedit'), 1, workload.layout);
    assert.ok(checks.some((c) => c.err > 1e-3 * c.size), `FedIT errors ${checks.map((c) => c.err).join(', ')}`);
  });
});
