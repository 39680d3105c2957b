// The dashboard reducer and its selectors on a recorded event stream, checked against the raw
// records (read independently from the JSONL), plus progress mid-stream and odd input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyModule } from '../../src/core/moduleNames.js';
import { initialFederation } from '../../src/extension/state/federationState.js';
import { createDashboardState } from '../../webview/model.js';
import { applyEvents, applyMessage } from '../../webview/state.js';
import {
  adapterDiffs,
  clientDiffs,
  deviationSeries,
  lossSeries,
  progress,
  residualByLayer,
  residualByType,
  selectedRound,
  selectedRun,
} from '../../webview/series.js';
import { fixtureEvents, rawModules, replayed, roundRecords, type RawEvent } from './helpers.js';

const TOL = 1e-12;
const events = fixtureEvents();

function close(actual: number | null | undefined, expected: number, what: string): void {
  assert.ok(actual !== null && actual !== undefined && Math.abs(actual - expected) <= TOL * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

describe('dashboard reducer on a recorded simulation', () => {
  const state = replayed(events);
  const view = state.federations[0];

  test('knows the simulation, both methods, and that every run finished all its rounds', () => {
    assert.equal(state.selected, 'sim');
    assert.deepEqual(view.simulation?.methods, ['fedex', 'fedit']);
    assert.deepEqual(view.runs.map((r) => r.key), ['fedex', 'fedit']);
    for (const r of view.runs) {
      assert.equal(r.phase, 'done');
      assert.deepEqual(progress(r), { round: 3, totalRounds: 3, phase: 'done', reported: 3, sampled: 3, failed: 0, quorum: 3, fraction: 1 });
      assert.deepEqual(r.clients.map((c) => [c.id, c.name]), [['c0', 'client 0'], ['c1', 'client 1'], ['c2', 'client 2']]);
    }
    assert.equal(view.phase, 'done');
    assert.equal(view.eventCount, events.length);
  });

  test('loss series: global mean and every client per round, and the other method as a comparison line', () => {
    const fedex = view.runs[0];
    const series = lossSeries(view, fedex);
    const records = roundRecords(events, 'fedex');
    const global = series.find((s) => s.key === 'global')!;
    assert.deepEqual(global.points.map((p) => p.x), [1, 2, 3]);
    records.forEach((r, i) => close(global.points[i].y, (r.loss as { mean: number }).mean, `mean loss round ${r.round}`));
    for (const id of ['c0', 'c1', 'c2']) {
      const s = series.find((x) => x.key === `client:${id}`)!;
      assert.equal(s.label, `client ${id.slice(1)}`);
      records.forEach((r, i) => close(s.points[i].y, (r.clients as Record<string, { trainLoss: number }>)[id].trainLoss, `${id} loss round ${r.round}`));
    }
    const other = series.find((s) => s.key === 'method:fedit')!;
    roundRecords(events, 'fedit').forEach((r, i) => close(other.points[i].y, (r.loss as { mean: number }).mean, `fedit mean loss round ${r.round}`));
  });

  test('deviation series: mean relative deviation over modules per round, per method and per module type', () => {
    const fedex = view.runs[0];
    const series = deviationSeries(view, fedex);
    for (const method of ['fedex', 'fedit']) {
      const s = series.find((x) => x.key === (method === 'fedex' ? 'global' : `method:${method}`))!;
      roundRecords(events, method).forEach((r, i) => {
        const rel = rawModules(r).map((m) => m.relativeDeviation);
        close(s.points[i].y, rel.reduce((a, b) => a + b, 0) / rel.length, `${method} deviation round ${r.round}`);
      });
    }
    const mlp = series.find((x) => x.key === 'type:mlp')!;
    roundRecords(events, 'fedex').forEach((r, i) => {
      const rel = rawModules(r).filter((m) => /\.mlp\./.test(m.module)).map((m) => m.relativeDeviation);
      assert.equal(rel.length, 4);
      close(mlp.points[i].y, rel.reduce((a, b) => a + b, 0) / rel.length, `mlp deviation round ${r.round}`);
    });
    assert.ok(series.every((s) => s.points.every((p) => p.y > 0 && p.y < 1)), 'relative deviations are in (0, 1)');
  });

  test('residual norms per module type: √Σ‖ΔR‖² of the type’s modules; per layer for the chosen round', () => {
    const fedex = view.runs[0];
    const byType = residualByType(fedex);
    assert.deepEqual(byType.map((s) => s.label), ['o', 'qkv', 'mlp'], 'GPT-2: attn.c_proj → o, c_attn → qkv, c_fc and mlp.c_proj → mlp');
    const records = roundRecords(events, 'fedex');
    for (const type of ['o', 'qkv', 'mlp']) {
      const s = byType.find((x) => x.label === type)!;
      records.forEach((r, i) => {
        const norms = rawModules(r).filter((m) => classifyModule(m.module) === type).map((m) => m.residualNorm);
        close(s.points[i].y, Math.sqrt(norms.reduce((a, b) => a + b * b, 0)), `${type} residual round ${r.round}`);
      });
    }
    const round2 = selectedRound(fedex, 2)!;
    const layers = residualByLayer(round2);
    assert.deepEqual(layers.categories, ['layer 0', 'layer 1']);
    const qkv = layers.series.find((s) => s.label === 'qkv')!;
    const raw = rawModules(records[1]).find((m) => m.module === 'transformer.h.1.attn.c_attn')!;
    close(qkv.values[1], raw.residualNorm, 'layer 1 qkv residual in round 2');
  });

  test('adapter diffs: ‖ΔĀ‖, ‖ΔB̄‖ per module and each client against the global, in participants order', () => {
    const fedex = view.runs[0];
    const record = roundRecords(events, 'fedex')[2];
    const round = selectedRound(fedex, null)!;
    assert.equal(round.round, 3, 'latest round by default');
    const diffs = adapterDiffs(round);
    const modules = rawModules(record);
    assert.deepEqual(diffs.titles, modules.map((m) => m.module));
    assert.equal(diffs.categories[0], '0.c_attn');
    modules.forEach((m, i) => {
      close(diffs.series[0].values[i], m.globalDeltaANorm, `ΔA ${m.module}`);
      close(diffs.series[1].values[i], m.globalDeltaBNorm, `ΔB ${m.module}`);
    });
    const participants = record.participants as string[];
    for (const factor of ['a', 'b'] as const) {
      const cd = clientDiffs(fedex, round, factor);
      assert.deepEqual(cd.series.map((s) => s.key), participants.map((p) => `client:${p}`));
      participants.forEach((p, k) => modules.forEach((m, i) => {
        close(cd.series[k].values[i], (factor === 'a' ? m.clientDeltaANorms : m.clientDeltaBNorms)[k], `${p} ${factor} ${m.module}`);
      }));
    }
  });

  test('heatmaps: the latest round per module, one chosen by name', () => {
    const fedex = view.runs[0];
    const raw = events.filter((e) => e.type === 'update_heatmap' && e.method === 'fedex').at(-1)!;
    const modules = raw.modules as { module: string; rows: number; cols: number; values: number[] }[];
    assert.deepEqual(fedex.heatmaps.map((h) => h.module), modules.map((m) => m.module));
    const chosen = fedex.heatmaps.find((h) => h.module === 'transformer.h.1.mlp.c_fc')!;
    const expected = modules.find((m) => m.module === chosen.module)!;
    assert.equal(chosen.round, raw.round);
    assert.equal(chosen.rows * chosen.cols, expected.values.length);
    assert.deepEqual(chosen.values, expected.values);
    assert.ok(chosen.values.every((v) => v !== null && v >= 0), 'max-|ΔW| pooling is non-negative');
  });

  test('progress mid-stream: round 2 of 3, training, one of three clients reported', () => {
    const cut = events.findIndex((e) => e.type === 'update_accepted' && e.method === 'fedex' && e.round === 2);
    const partial = replayed(events.slice(0, cut + 1));
    const r = selectedRun(partial.federations[0], null)!;
    assert.equal(r.key, 'fedex');
    const p = progress(r);
    assert.deepEqual([p.round, p.totalRounds, p.phase, p.reported, p.sampled], [2, 3, 'training', 1, 3]);
    assert.equal(r.rounds.length, 1);
    const done = replayed(events.slice(0, events.findIndex((e) => e.type === 'round_closed' && e.method === 'fedex' && e.round === 2)));
    assert.equal(progress(selectedRun(done.federations[0], null)!).phase, 'aggregating', 'all sampled reported, round not closed yet');
  });
});

describe('dashboard reducer on other streams', () => {
  test('a hosted federation: every event goes to one run, update_heatmap’s strategy name is not a run key', () => {
    const sim = fixtureEvents().filter((e) => e.method === 'fedex' || e.method === undefined);
    const hosted = sim.filter((e) => !['simulation_started', 'simulation_done', 'method_started', 'method_done'].includes(e.type))
      .map((e) => (e.type === 'update_heatmap' ? e : { ...e, method: undefined }));
    const state = applyEvents(createDashboardState(), 'host-1', hosted);
    const view = state.federations[0];
    assert.deepEqual(view.runs.map((r) => r.key), ['']);
    assert.equal(view.runs[0].rounds.length, 3);
    assert.equal(view.runs[0].heatmaps.length, 8);
    assert.equal(view.runs[0].phase, 'done');
  });

  test('manual rounds: round_ready → ready (waiting for Start Round), round_started → training', () => {
    const t = 1000;
    const stream: RawEvent[] = [
      { type: 'listening', time: t, url: 'ws://x', runDir: '/r', resumedFromRound: null },
      { type: 'client_joined', time: t, clientId: 'a', name: 'a', sessionId: 's', resumed: false, clients: 1 },
      { type: 'round_ready', time: t, round: 1, clients: 1, minClients: 1 },
    ] as RawEvent[];
    const state = applyEvents(createDashboardState(), 'h', stream);
    const ready = progress(state.federations[0].runs[0]);
    assert.equal(ready.phase, 'ready');
    assert.equal(ready.round, 0, 'no round has started yet');
    applyEvents(state, 'h', [{ type: 'round_started', time: t, round: 1, sampled: ['a'], quorum: 1, deadline: t, baseRevision: 0 }] as RawEvent[]);
    assert.equal(state.federations[0].runs[0].phase, 'training');
  });

  test('join events feed the loss and deviation series', () => {
    const t = 1000;
    const join: RawEvent[] = [
      { type: 'join_connected', time: t, url: 'ws://x' },
      { type: 'join_welcomed', time: t, clientId: 'me', sessionId: 's', currentRound: 0 },
      { type: 'join_round_started', time: t, round: 1, baseRevision: 0, updatedModules: 0 },
      { type: 'join_round_closed', time: t, round: 1, participants: 3, meanLoss: 2.5, meanRelativeDeviation: 0.25 },
      { type: 'join_round_started', time: t, round: 2, baseRevision: 1, updatedModules: 4 },
    ] as RawEvent[];
    const view = applyEvents(createDashboardState(), 'j', join).federations[0];
    const r = view.runs[0];
    assert.equal(r.phase, 'training');
    assert.equal(r.round, 2);
    assert.deepEqual(lossSeries(view, r)[0].points, [{ x: 1, y: 2.5 }]);
    assert.deepEqual(deviationSeries(view, r)[0].points, [{ x: 1, y: 0.25 }]);
  });

  test('odd payloads: wrong types read as null, unknown types are ignored, nothing throws, no prototype pollution', () => {
    // As JSON text, like the stream: JSON.parse makes "__proto__" an own key, not a prototype.
    const odd = JSON.parse(`[
      { "type": "round_started", "time": 1, "round": "2", "sampled": "c0", "quorum": null },
      { "type": "client_joined", "time": 2, "clientId": "__proto__", "name": "<img src=x onerror=alert(1)>" },
      { "type": "update_accepted", "time": 3, "clientId": "__proto__", "trainLoss": "NaN" },
      { "type": "round_closed", "time": 4, "round": 1, "participants": ["__proto__"], "clients": { "__proto__": { "trainLoss": 1 }, "c1": 7 },
        "modules": [null, 3, { "module": 5 }, { "module": "x.q_proj", "relativeDeviation": "big", "clientDeltaANorms": [0.5] }], "loss": [] },
      { "type": "update_heatmap", "time": 5, "round": 1, "modules": [{ "module": "m", "rows": 2, "cols": 2, "values": [1, 2, 3] },
        { "module": "n", "rows": 1e9, "cols": 1, "values": [] }, { "module": "k", "values": null, "note": "too big" }] },
      { "type": "something_new", "time": 6, "whatever": true }
    ]`) as RawEvent[];
    const state = applyEvents(createDashboardState(), 'odd', odd);
    const r = state.federations[0].runs[0];
    assert.equal(r.round, 1, 'a non-numeric round falls back to the next round');
    assert.deepEqual(r.sampled, []);
    assert.equal(r.clients[0].id, '__proto__');
    assert.equal(r.clients[0].name, '<img src=x onerror=alert(1)>', 'kept as plain text');
    assert.equal(r.rounds[0].modules.length, 1);
    assert.equal(r.rounds[0].modules[0].relativeDeviation, null);
    assert.equal(r.rounds[0].meanLoss, null);
    assert.deepEqual(r.rounds[0].clientLoss, [{ client: '__proto__', loss: 1, examples: null }, { client: 'c1', loss: null, examples: null }]);
    assert.deepEqual(r.rounds[0].clientDiffs, [{ client: '__proto__', module: 'x.q_proj', a: 0.5, b: null }]);
    assert.equal(r.clients[0].lastLoss, 1);
    assert.deepEqual(r.heatmaps.map((h) => [h.module, h.values.length, h.note]), [['m', 0, '3 values for a 2×2 grid'], ['n', 0, 'malformed grid 1000000000×1'], ['k', 0, 'too big']]);
    assert.equal(({} as Record<string, unknown>).trainLoss, undefined, 'Object.prototype untouched');
    assert.equal(state.federations[0].eventCount, 6);
  });

  test('select and federation messages', () => {
    let state = replayed();
    state = applyMessage(state, { type: 'federation', federation: { ...state.federations[0], label: 'renamed' } });
    state = applyMessage(state, { type: 'federation', federation: initialFederation({ id: 'h', label: 'host', kind: 'host' }) });
    assert.deepEqual(state.federations.map((f) => f.label), ['renamed', 'host']);
    state.ui.module = 'transformer.h.0.attn.c_attn';
    state = applyMessage(state, { type: 'select', federationId: 'h' });
    assert.equal(state.selected, 'h');
    assert.equal(state.ui.module, null, 'choices reset for another federation');
    state = applyMessage(state, { type: 'select', federationId: 'nope' });
    assert.equal(state.selected, 'h', 'an unknown id is ignored');
  });
});
