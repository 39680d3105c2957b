// What the extension posts to the dashboard (dashboardSync.ts): `init` carries every dashboard
// federation's folded state (charts' figures included), not its event history, so its size follows
// the rounds' records and one heatmap per module, not every event of the run; each later store
// change is one message (the new events, or the whole state when it changed without an event).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { changeMessage, initMessage } from '../../../src/extension/dashboard/dashboardSync.js';
import { DASHBOARD_PROTOCOL_VERSION } from '../../../src/extension/dashboard/messages.js';
import { initialFederation, reduceFederation, type FederationEvent } from '../../../src/extension/state/federationState.js';
import { FederationStore, type StoreChange } from '../../../src/extension/state/federationStore.js';
import { deviationSeries, lossSeries, residualByType, selectedRun } from '../../../webview/series.js';

type Raw = FederationEvent & Record<string, unknown>;

const RECORDED: Raw[] = readFileSync(fileURLToPath(new URL('../../webview/fixtures/simulation.events.jsonl', import.meta.url)), 'utf8')
  .split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Raw);
const SIM = { id: 'sim:1', kind: 'simulation', label: 'Local simulation' } as const;

/**
 * The recorded simulation (2 methods × 3 rounds) grown to `rounds` rounds per method: each method's
 * round-2 events (start, client reports, uploads, the round record, its broadcast and heatmap) are
 * repeated for rounds 4…`rounds`, renumbered and later in time, before the method's end.
 */
function grown(rounds: number): Raw[] {
  const out: Raw[] = [];
  for (const e of RECORDED) {
    if (e.type === 'simulation_started') {
      out.push({ ...e, rounds });
      continue;
    }
    if (e.type === 'federation_done') {
      const template = RECORDED.filter((x) => x.method === e.method && x.round === 2);
      for (let r = 4; r <= rounds; r++) for (const x of template) out.push({ ...x, round: r, time: x.time + (r - 2) * 1000 });
    }
    out.push(e);
  }
  return out;
}

function storeWith(events: readonly FederationEvent[]): FederationStore {
  const store = new FederationStore();
  store.add({ id: 'remote:ws://lab:1', kind: 'remote', label: 'Lab', url: 'ws://lab:1' });
  store.add({ ...SIM, totalRounds: 3 });
  store.apply(SIM.id, events);
  return store;
}

const bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));

describe('dashboard init', () => {
  test('carries the dashboard federations folded, not their history; remote ones and unknown selections are left out', () => {
    // prepare
    const store = storeWith(RECORDED);
    // act
    const init = initMessage(store.list(), 'remote:ws://lab:1', 'light');
    // assert
    assert.deepEqual(Object.keys(init).sort(), ['federations', 'selected', 'theme', 'type', 'version']);
    assert.equal(init.version, DASHBOARD_PROTOCOL_VERSION);
    assert.deepEqual(init.federations, [store.get(SIM.id)]);
    assert.equal(init.selected, null, 'a remote federation is not on the dashboard');
    assert.equal(initMessage(store.list(), SIM.id, 'dark').selected, SIM.id);
    // The charts need nothing but the state: the same series as folding the whole history.
    const replay = RECORDED.reduce(reduceFederation, initialFederation({ ...SIM, totalRounds: 3 }));
    const [sent] = init.federations;
    for (const key of ['fedex', 'fedit']) {
      const a = selectedRun(sent, key)!;
      const b = selectedRun(replay, key)!;
      assert.deepEqual([lossSeries(sent, a), deviationSeries(sent, a), residualByType(a)], [lossSeries(replay, b), deviationSeries(replay, b), residualByType(b)]);
    }
  });

  test('a 50-round run: init is a fraction of the history and holds one heatmap per module, not one per round', (t) => {
    // prepare
    const events = grown(50);
    const store = storeWith(events);
    const history = { type: 'init', version: 1, federations: [{ id: SIM.id, label: SIM.label, kind: SIM.kind, live: true }], history: { [SIM.id]: store.events(SIM.id) }, selected: null, theme: 'dark' };
    // act
    const init = initMessage(store.list(), null, 'dark');
    // assert
    const [state] = init.federations;
    assert.deepEqual(state.runs.map((r) => [r.key, r.rounds.length, r.heatmaps.length]), [['fedex', 50, 8], ['fedit', 50, 8]]);
    const heatmapEvents = events.filter((e) => e.type === 'update_heatmap').length;
    assert.equal(heatmapEvents, 100);
    const before = bytes(history);
    const after = bytes(init);
    t.diagnostic(`init of a 50-round, 2-method run (${events.length} events): ${before} bytes as history, ${after} bytes as state`);
    assert.ok(after * 4 < before, `init ${after} bytes, history ${before} bytes`);
    // Each extra round adds its record to the state, never another heatmap.
    const at3 = bytes(initMessage(storeWith(RECORDED).list(), null, 'dark'));
    const record = bytes(RECORDED.find((e) => e.type === 'round_closed')!);
    assert.ok(after - at3 < 1.25 * 2 * 47 * record, `47 more rounds per method added ${after - at3} bytes; a round record is ~${record} bytes`);
  });
});

describe('dashboard updates', () => {
  test('events become an events message; a change without events, the whole state; remote federations, nothing', () => {
    const store = storeWith([]);
    const changes: StoreChange[] = [];
    store.onDidChange((c) => changes.push(c));
    // act
    store.apply(SIM.id, RECORDED.slice(0, 3));
    store.exited(SIM.id, { code: 1, signal: null, stopped: false });
    store.patch('remote:ws://lab:1', { label: 'Lab 2' });
    const messages = changes.map((c) => changeMessage(store, c));
    // assert
    assert.deepEqual(messages[0], { type: 'events', federationId: SIM.id, events: RECORDED.slice(0, 3) });
    assert.deepEqual(messages[1], { type: 'federation', federation: store.get(SIM.id) });
    assert.equal(store.get(SIM.id)?.phase, 'failed');
    assert.equal(messages[2], null);
    assert.equal(changeMessage(store, { kind: 'removed', id: 'gone' }), null);
  });
});
