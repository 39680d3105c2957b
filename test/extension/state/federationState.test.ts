import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { activeRun, currentRound, federationExited, initialFederation, reduceFederation } from '../../../src/extension/state/federationState.js';
import type { FederationState } from '../../../src/extension/state/federationState.js';
import { clientNodes, federationFraction, federationNodes, roundNodes, roundViews, statusCommand, statusText, statusTooltip } from '../../../src/extension/state/treeModel.js';
import type { StreamEvent } from '../../../src/extension/process/jsonlLines.js';

function recorded(name: string): StreamEvent[] {
  const text = readFileSync(fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url)), 'utf8');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as StreamEvent);
}

const replay = (state: FederationState, events: readonly StreamEvent[]): FederationState => events.reduce(reduceFederation, state);

describe('reduceFederation on a recorded host run', () => {
  const host = initialFederation({ id: 'host:1', kind: 'host', label: 'Hosted :8765', totalRounds: 2, method: 'fedex' });

  test('mid-run: clients with status, examples and last loss; round 1 closed, round 2 running', () => {
    // act
    const s = replay(host, recorded('hostRun.jsonl'));
    // assert: state
    assert.equal(s.phase, 'training');
    assert.equal(currentRound(s), 2);
    assert.equal(s.url, 'ws://127.0.0.1:8765');
    assert.equal(s.outDir, '/runs/host-1');
    assert.equal(statusText(s), 'FedEx round 2/2 · training');
    // assert: clients view
    const [group] = clientNodes([s]);
    assert.equal(group.description, '1 connected');
    assert.deepEqual(group.children?.map((c) => [c.label, c.description]), [
      ['alice', 'uploaded · 120 examples · loss 1.90'],
      ['bob', 'left · 80 examples · loss 2.70'],
    ]);
    // assert: rounds view, latest first
    const [rounds] = roundNodes([s]);
    assert.deepEqual(rounds.children?.map((r) => [r.label, r.description]), [
      ['Round 2', 'running'],
      ['Round 1', 'loss 2.60 · dev 0.20 · 2/2 clients'],
    ]);
    assert.match(rounds.children?.[1].tooltip ?? '', /bytes on the wire: 17\.8 KiB/);
    // assert: federations view
    const [fed] = federationNodes([s]);
    assert.equal(fed.description, 'training · round 2/2');
    assert.equal(fed.contextValue, 'federation.host.live');
    assert.equal(fed.icon, 'sync~spin');
  });

  test('all uploads in → aggregating; then the end of the run → done, and the exit keeps it', () => {
    const events = recorded('hostRun.jsonl');
    const beforeSecond = replay(host, events.slice(0, 5));
    assert.equal(beforeSecond.phase, 'training');
    assert.equal(replay(host, events.slice(0, 6)).phase, 'aggregating');
    const done = replay(host, [...events, ...recorded('hostRunEnd.jsonl')]);
    assert.equal(done.phase, 'done');
    const r2 = roundViews(done).find((r) => r.round === 2);
    assert.equal(r2?.participants, 1);
    assert.equal(r2?.meanRelativeDeviation, null, 'null deviations (metrics off) must not become 0');
    const exited = federationExited(done, { code: 0, signal: null, stopped: false });
    assert.equal(exited.live, false);
    assert.equal(exited.phase, 'done');
    assert.equal(federationNodes([exited])[0].contextValue, 'federation.host.ended');
    assert.equal(federationNodes([exited])[0].icon, 'pass');
  });

  test('a crash without a final event becomes failed with the reason; a stop becomes stopped', () => {
    const mid = replay(host, recorded('hostRun.jsonl'));
    const crashed = federationExited(mid, { code: 1, signal: null, stopped: false });
    assert.equal(crashed.phase, 'failed');
    assert.match(crashed.lastError ?? '', /exit code 1/);
    assert.equal(statusText(crashed), 'FedEx round 2/2 · failed');
    assert.equal(federationExited(mid, { code: null, signal: 'SIGTERM', stopped: true }).phase, 'stopped');
  });

  test('unknown event types change nothing but the time and the event count', () => {
    const s = replay(host, recorded('hostRun.jsonl'));
    const after = reduceFederation(s, { type: 'brand_new_event', time: 99_999 });
    assert.deepEqual({ ...after, updatedAt: s.updatedAt, eventCount: s.eventCount }, s);
    assert.equal(after.updatedAt, 99_999);
    assert.equal(after.eventCount, s.eventCount + 1);
  });
});

describe('reduceFederation with manual rounds', () => {
  const host = initialFederation({ id: 'host:m', kind: 'host', label: 'Hosted :8765', totalRounds: 3, method: 'fedex', manualRounds: true });
  const joined = (id: string, clients: number): StreamEvent => ({ type: 'client_joined', time: 2, clientId: id, name: id, sessionId: `s-${id}`, resumed: false, clients });
  const events: StreamEvent[] = [
    { type: 'listening', time: 1, url: 'ws://127.0.0.1:8765', runDir: '/runs/m', resumedFromRound: null },
    joined('a', 1),
    joined('b', 2),
    { type: 'round_ready', time: 3, round: 1, clients: 2, minClients: 2 },
  ];

  test('round_ready → ready: the status bar and the tree say to run Start Round, and a click runs it', () => {
    // act
    const s = replay(host, events);
    // assert
    assert.equal(s.phase, 'ready');
    assert.deepEqual(s.ready, { round: 1, minClients: 2 });
    assert.equal(statusText(s), 'FedEx round 0/3 · ready — run FedEx: Start Round');
    assert.match(statusTooltip(s), /Click to run FedEx: Start Round\./);
    assert.equal(statusCommand(s), 'fedex.startRound');
    const [fed] = federationNodes([s]);
    assert.equal(fed.description, 'ready — run FedEx: Start Round · round 0/3');
    assert.equal(fed.icon, 'debug-start');
  });

  test('a client leaving while ready → waiting; enough again → ready; round_started → training and no longer ready', () => {
    const left = replay(host, [...events, { type: 'client_left', time: 4, clientId: 'b', name: 'b', reason: 'bye', clients: 1 }]);
    assert.equal(left.phase, 'waiting');
    assert.equal(statusCommand(left), 'fedex.openDashboard');
    const back = reduceFederation(left, joined('c', 2));
    assert.equal(back.phase, 'ready');
    const started = reduceFederation(back, { type: 'round_started', time: 5, round: 1, sampled: ['a', 'c'], quorum: 1, deadline: 9, baseRevision: 0 });
    assert.equal(started.phase, 'training');
    assert.equal(started.ready, null);
    assert.equal(reduceFederation(started, { type: 'client_left', time: 6, clientId: 'a', name: 'a', reason: 'bye', clients: 1 }).phase, 'training', 'a running round keeps its phase');
  });

  test('round_ready also marks a federation started without the flag as manual (the stream is the truth)', () => {
    const plain = initialFederation({ id: 'host:p', kind: 'host', label: 'P' });
    assert.equal(plain.manualRounds, false);
    assert.equal(replay(plain, events).manualRounds, true);
  });
});

describe('reduceFederation on a simulation', () => {
  const events: StreamEvent[] = [
    { type: 'simulation_started', time: 1, methods: ['fedex', 'fedit'], clients: 2, rounds: 1, localSteps: 4, model: 'synthetic', data: 'task:copy', out: '/out', rank: 4, alpha: 8, seed: 0 },
    { type: 'method_started', time: 2, method: 'fedex' },
    { type: 'listening', time: 3, method: 'fedex', url: 'ws://127.0.0.1:40001', runDir: '/out/fedex', resumedFromRound: null },
    { type: 'client_joined', time: 4, method: 'fedex', clientId: 'client-1', name: 'client-1', sessionId: 's', resumed: false, clients: 1 },
    { type: 'round_started', time: 5, method: 'fedex', round: 1, sampled: ['client-1'], quorum: 1, deadline: 100, baseRevision: 0 },
    { type: 'client_progress', time: 6, method: 'fedex', clientId: 'client-1', round: 1, step: 2, totalSteps: 4, loss: 3.25 },
    { type: 'round_evaluated', time: 8, method: 'fedex', round: 1, evalLoss: 2.75, evalAccuracy: 0.5, exactMatch: null },
    { type: 'method_done', time: 9, method: 'fedex', evalLoss: 2.75, evalAccuracy: 0.5, exactMatch: null, meanRelativeDeviation: 0.1, bytesSent: 1, bytesReceived: 1, seconds: 1 },
    { type: 'method_started', time: 10, method: 'fedit' },
  ] as StreamEvent[];
  const sim = initialFederation({ id: 'sim:1', kind: 'simulation', label: 'Local simulation' });

  test('centralized rounds (evaluated, never closed by a coordinator) stop running when the method is done', () => {
    const central: StreamEvent[] = [
      { type: 'method_started', time: 1, method: 'centralized' },
      { type: 'round_evaluated', time: 2, method: 'centralized', round: 1, evalLoss: 3, evalAccuracy: null, exactMatch: null },
      { type: 'round_evaluated', time: 3, method: 'centralized', round: 2, evalLoss: 2.5, evalAccuracy: null, exactMatch: null },
    ] as StreamEvent[];
    const during = replay(sim, central);
    assert.deepEqual(roundViews(during).map((r) => r.status), ['running', 'running']);
    const done = reduceFederation(during, { type: 'method_done', time: 4, method: 'centralized', evalLoss: 2.5, evalAccuracy: null, exactMatch: null, meanRelativeDeviation: null, bytesSent: 0, bytesReceived: 0, seconds: 1 } as StreamEvent);
    assert.deepEqual(roundViews(done).map((r) => [r.round, r.status, r.evalLoss]), [[1, 'closed', 3], [2, 'closed', 2.5]]);
  });

  test('tracks the current method, per-client progress and per-method rounds', () => {
    const during = replay(sim, events.slice(0, 6));
    assert.equal(statusText(during), 'FedEx round 1/1 · training · fedex');
    assert.equal(clientNodes([during])[0].children?.[0].description, 'training 2/4 · loss 3.25');
    assert.equal(during.url, null, "a simulation's loopback URL is not shown as the federation's");
    const later = replay(sim, events);
    assert.equal(later.method, 'fedit');
    assert.equal(activeRun(later)?.clients.length, 0, 'a new method starts with no clients');
    const [rounds] = roundNodes([later]);
    assert.deepEqual(rounds.children?.map((m) => [m.label, m.description]), [['fedex', 'final eval loss 2.75']]);
    assert.equal(rounds.children?.[0].children?.[0].description, 'eval 2.75', 'a finished method has no running round');
  });

  test('simulation_done keeps the report paths; error fails it', () => {
    const done = reduceFederation(replay(sim, events), { type: 'simulation_done', time: 11, reportJson: '/out/report.json', reportHtml: '/out/report.html' });
    assert.equal(done.phase, 'done');
    assert.equal(done.reportHtml, '/out/report.html');
    const failed = reduceFederation(sim, { type: 'error', time: 2, message: 'no such model' });
    assert.equal(failed.phase, 'failed');
    assert.equal(failed.lastError, 'no such model');
  });
});

describe('joined and remote federations', () => {
  test('a join stream drives the phase; a remote from settings hides behind its join', () => {
    const join = initialFederation({ id: 'join:ws://h:1', kind: 'join', label: 'Lab', url: 'ws://h:1' });
    assert.equal(join.phase, 'connecting');
    const s = replay(join, [
      { type: 'join_connected', time: 1, url: 'ws://h:1' },
      { type: 'join_welcomed', time: 2, clientId: 'me', sessionId: 's', currentRound: 3 },
      { type: 'join_round_started', time: 3, round: 4, baseRevision: 3, updatedModules: 2 },
      { type: 'join_uploaded', time: 4, round: 4, bytes: 10 },
    ] as StreamEvent[]);
    assert.equal(statusText(s), 'FedEx round 4 · uploaded');
    const closed = reduceFederation(s, { type: 'join_round_closed', time: 5, round: 4, participants: 3, meanLoss: 1.5, meanRelativeDeviation: 0.25 } as StreamEvent);
    assert.equal(closed.phase, 'closed');
    assert.equal(roundNodes([closed])[0].children?.[0].description, 'loss 1.50 · dev 0.25 · 3 clients');
    const remote = initialFederation({ id: 'remote:ws://h:1', kind: 'remote', label: 'Lab', url: 'ws://h:1' });
    const other = initialFederation({ id: 'remote:ws://g:2', kind: 'remote', label: 'Other', url: 'ws://g:2' });
    assert.equal(remote.phase, 'idle');
    const nodes = federationNodes([remote, other, closed]);
    assert.deepEqual(nodes.map((n) => [n.label, n.contextValue]), [['Other', 'federation.remote.idle'], ['Lab', 'federation.join.live']]);
    assert.equal(nodes[0].description, 'ws://g:2');
    const left = reduceFederation(closed, { type: 'join_done', time: 6, reason: 'left', roundsCompleted: 4, roundsParticipated: 1, baseRevision: 4 } as StreamEvent);
    assert.equal(left.phase, 'stopped');
  });
});

describe('federationFraction', () => {
  test('closed rounds over methods × rounds', () => {
    const sim = initialFederation({ id: 's', kind: 'simulation', label: 'S' });
    const s = replay(sim, [
      { type: 'simulation_started', time: 1, methods: ['fedex', 'fedit'], clients: 1, rounds: 2, localSteps: 1, model: 'm', data: 'd', out: '/o', rank: 1, alpha: 1, seed: 0 },
      { type: 'method_started', time: 2, method: 'fedit' },
      { type: 'round_started', time: 3, method: 'fedit', round: 1, sampled: ['a'], quorum: 1, deadline: 9, baseRevision: 0 },
    ] as StreamEvent[]);
    assert.equal(federationFraction(s), 0.5);
    const closed = replay(s, recorded('hostRunEnd.jsonl').slice(0, 1).map((e) => ({ ...e, method: 'fedit', round: 1 }) as StreamEvent));
    assert.equal(federationFraction(closed), 0.75);
    assert.equal(federationFraction(initialFederation({ id: 'j', kind: 'join', label: 'J' })), 0);
  });
});
