import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { currentRound } from '../../../src/extension/state/federationState.js';
import { FederationStore } from '../../../src/extension/state/federationStore.js';
import type { StoreChange } from '../../../src/extension/state/federationStore.js';
import type { StreamEvent } from '../../../src/extension/process/jsonlLines.js';

const progress = (time: number): StreamEvent => ({ type: 'client_progress', time, clientId: 'c', round: 1, step: time, totalSteps: 100, loss: 1 } as StreamEvent);

describe('FederationStore', () => {
  test('keeps the event history in order and tells listeners what was appended', () => {
    // prepare
    const store = new FederationStore();
    const changes: StoreChange[] = [];
    store.onDidChange((c) => changes.push(c));
    store.add({ id: 'a', kind: 'host', label: 'A', totalRounds: 3 });
    const batch: StreamEvent[] = [
      { type: 'listening', time: 1, url: 'ws://127.0.0.1:1', runDir: '/r', resumedFromRound: null } as StreamEvent,
      { type: 'round_started', time: 2, round: 1, sampled: [], quorum: 1, deadline: 3, baseRevision: 0 } as StreamEvent,
    ];
    // act
    store.apply('a', batch);
    store.apply('unknown', batch);
    store.exited('a', { code: 0, signal: null, stopped: false });
    // assert
    assert.deepEqual(store.events('a'), batch);
    assert.equal(currentRound(store.get('a')!), 1);
    assert.equal(store.get('a')?.live, false);
    assert.deepEqual(changes.map((c) => [c.kind, c.id, c.events?.length ?? 0]), [['added', 'a', 0], ['updated', 'a', 2], ['updated', 'a', 0]]);
  });

  test('over the cap, progress ticks are dropped before structural events', () => {
    const store = new FederationStore(5);
    store.add({ id: 'a', kind: 'simulation', label: 'S' });
    const start = { type: 'method_started', time: 0, method: 'fedex' } as StreamEvent;
    store.apply('a', [start, progress(1), progress(2), progress(3), progress(4)]);
    store.apply('a', [progress(5), progress(6)]);
    const kept = store.events('a');
    assert.equal(kept.length, 5);
    assert.equal(kept[0], start);
    assert.deepEqual(kept.slice(1).map((e) => e.time), [3, 4, 5, 6]);
    assert.equal(store.droppedEvents('a'), 2);
  });

  test('active(): the latest live federation, else the latest started; remotes not joined never', () => {
    const store = new FederationStore();
    store.add({ id: 'r', kind: 'remote', label: 'R', url: 'ws://x:1' });
    assert.equal(store.active(), undefined);
    store.add({ id: 'h', kind: 'host', label: 'H' });
    store.add({ id: 's', kind: 'simulation', label: 'S' });
    store.exited('s', { code: 0, signal: null, stopped: false });
    assert.equal(store.active()?.id, 'h');
    store.exited('h', { code: 0, signal: null, stopped: true });
    assert.equal(store.active()?.id, 's');
    const sub = store.onDidChange(() => assert.fail('disposed listener called'));
    sub.dispose();
    store.remove('s');
    assert.equal(store.get('s'), undefined);
  });
});
