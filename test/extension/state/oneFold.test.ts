// One fold for the sidebar and the dashboard: recorded event streams are folded by the extension's
// store in random batches while a dashboard opens at a random point (its `init`, then the messages
// the panel derives from each store change, all through JSON and the message guard, as postMessage).
// Whatever the batching and the opening point, the dashboard ends with the state the extension
// holds, so the sidebar, the status bar and the dashboard show the same thing, in one phase
// vocabulary. Streams: a `fedex simulate`-shaped recording (two methods, heatmaps), a hand-written
// host run with a failed client, a recorded `fedex host --dp-clip 0.05 --dp-noise 1` (synthetic
// model, 3 rounds, two `fedex join` clients), and the recorded stream of one `fedex join` client of
// the same federation without DP (a client under DP is not told the round's loss).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../../../src/core/random.js';
import { changeMessage, initMessage } from '../../../src/extension/dashboard/dashboardSync.js';
import { checkExtensionToWebview, type ExtensionToWebviewMessage } from '../../../src/extension/dashboard/messages.js';
import { activeRun, initialFederation, reduceFederation, type FederationEvent, type FederationState } from '../../../src/extension/state/federationState.js';
import { FederationStore } from '../../../src/extension/state/federationStore.js';
import { CONNECTION_PHASES } from '../../../src/extension/state/phases.js';
import { clientNodes, federationNodes, roundNodes, statusText } from '../../../src/extension/state/treeModel.js';
import { createDashboardState, type DashboardState } from '../../../webview/model.js';
import { lossSeries, privacySummary, progress, roundRows, selectedRun } from '../../../webview/series.js';
import { applyMessage } from '../../../webview/state.js';

function jsonl(url: URL): FederationEvent[] {
  return readFileSync(fileURLToPath(url), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as FederationEvent);
}

interface Stream {
  readonly name: string;
  readonly init: Parameters<typeof initialFederation>[0];
  readonly events: FederationEvent[];
}

const STREAMS: Stream[] = [
  { name: 'simulation (recorded)', init: { id: 'sim:1', kind: 'simulation', label: 'Local simulation', totalRounds: 3 }, events: jsonl(new URL('../../webview/fixtures/simulation.events.jsonl', import.meta.url)) },
  {
    name: 'host (hand-written)',
    init: { id: 'host:1', kind: 'host', label: 'Hosted :8765', totalRounds: 2, method: 'fedex' },
    events: [...jsonl(new URL('../fixtures/hostRun.jsonl', import.meta.url)), ...jsonl(new URL('../fixtures/hostRunEnd.jsonl', import.meta.url))],
  },
  { name: 'host with client-level DP (recorded)', init: { id: 'host:2', kind: 'host', label: 'Hosted :0', totalRounds: 3, method: 'fedex' }, events: jsonl(new URL('../fixtures/hostDpRun.jsonl', import.meta.url)) },
  { name: 'join (recorded)', init: { id: 'join:1', kind: 'join', label: 'Lab', url: 'ws://127.0.0.1:35277/' }, events: jsonl(new URL('../fixtures/joinRun.jsonl', import.meta.url)) },
];

/** A dashboard wired to a store as the panel wires it: `init`, then one message per store change, each through JSON and the guard. */
function openDashboard(store: FederationStore): { readonly state: DashboardState; readonly posted: ExtensionToWebviewMessage[]; close(): void } {
  const state = createDashboardState();
  const posted: ExtensionToWebviewMessage[] = [];
  const post = (message: ExtensionToWebviewMessage): void => {
    const checked = checkExtensionToWebview(JSON.parse(JSON.stringify(message)));
    assert.ok(checked.ok, checked.ok ? '' : checked.reason);
    posted.push(checked.message);
    applyMessage(state, checked.message);
  };
  post(initMessage(store.list(), null, 'dark'));
  const sub = store.onDidChange((change) => {
    const message = changeMessage(store, change);
    if (message !== null) post(message);
  });
  return { state, posted, close: () => sub.dispose() };
}

/** Random batches of 1..8 events, as stdout chunks deliver them. */
function batches(events: readonly FederationEvent[], rng: () => number): FederationEvent[][] {
  const out: FederationEvent[][] = [];
  for (let i = 0; i < events.length;) {
    const n = 1 + Math.floor(rng() * 8);
    out.push(events.slice(i, i + n));
    i += n;
  }
  return out;
}

/** What the sidebar and the status bar show of a federation, and what the dashboard shows of each run. */
function shown(s: FederationState): unknown {
  return {
    sidebar: { federations: federationNodes([s]), clients: clientNodes([s]), rounds: roundNodes([s]), status: statusText(s) },
    dashboard: s.runs.map((r) => ({ progress: progress(r), rows: roundRows(r), loss: lossSeries(s, r), privacy: privacySummary(r) })),
    selected: selectedRun(s, null)?.key ?? null,
  };
}

describe('one fold for the sidebar and the dashboard', () => {
  for (const stream of STREAMS) {
    test(`${stream.name}: any batching, any opening point, the dashboard ends with the extension's state`, () => {
      const once = stream.events.reduce(reduceFederation, initialFederation(stream.init));
      for (let seed = 1; seed <= 30; seed++) {
        // prepare
        const rng = mulberry32(seed);
        const store = new FederationStore();
        store.add(stream.init);
        const chunks = batches(stream.events, rng);
        const openAt = Math.floor(rng() * (chunks.length + 1));
        let dashboard: ReturnType<typeof openDashboard> | undefined;
        // act: the stream arrives; the dashboard opens between two chunks
        chunks.forEach((chunk, i) => {
          if (i === openAt) dashboard = openDashboard(store);
          store.apply(stream.init.id, chunk);
        });
        dashboard ??= openDashboard(store);
        const host = store.get(stream.init.id)!;
        // assert: one fold whatever the batching; the dashboard holds the same state and shows the same figures
        assert.deepEqual(host, once, `seed ${seed}: batching changed the fold`);
        assert.deepEqual(dashboard.state.federations, [host], `seed ${seed}: dashboard opened after ${openAt} of ${chunks.length} chunks`);
        assert.deepEqual(shown(dashboard.state.federations[0]), shown(host));
        assert.ok(dashboard.posted.every((m) => m.type !== 'init' || m.federations.every((f) => f.eventCount <= stream.events.length)));
        // act: the process ends (no event): the extension pushes the whole state
        store.exited(stream.init.id, { code: 0, signal: null, stopped: false });
        // assert
        assert.equal(dashboard.posted.at(-1)?.type, 'federation');
        assert.deepEqual(dashboard.state.federations, [store.get(stream.init.id)]);
        assert.equal(dashboard.state.federations[0].live, false);
        dashboard.close();
      }
    });

    test(`${stream.name}: after every event, the federation's phase is its active run's (one vocabulary)`, () => {
      let s = initialFederation(stream.init);
      let seen = 0;
      for (const event of stream.events) {
        s = reduceFederation(s, event);
        const run = activeRun(s);
        // Between a simulated method's end and the next one's start there is no run to follow.
        const between = s.kind === 'simulation' && (run === undefined || run.phase === 'done');
        if (run === undefined || between || CONNECTION_PHASES.has(s.phase)) continue;
        assert.equal(s.phase, run.phase, `after ${event.type} #${seen}`);
        assert.equal(statusText(s).split(' · ')[1], run.phase === 'ready' ? 'ready — run FedEx: Start Round' : progress(run).phase, 'status bar and dashboard say the same');
        seen++;
      }
      assert.ok(seen > stream.events.length / 2, `compared after ${seen} of ${stream.events.length} events`);
    });
  }

  test("after round_closed the sidebar and the dashboard both say 'closed' (they said waiting and closed)", () => {
    for (const stream of STREAMS.filter((x) => x.init.kind !== 'simulation')) {
      const cut = stream.events.findIndex((e) => e.type === 'round_closed' || e.type === 'join_round_closed');
      const s = stream.events.slice(0, cut + 1).reduce(reduceFederation, initialFederation(stream.init));
      assert.equal(s.phase, 'closed', stream.name);
      assert.match(statusText(s), / · closed$/, stream.name);
      assert.equal(progress(selectedRun(s, null)!).phase, 'closed', stream.name);
    }
  });
});
