// The pure parts of the round loop: seeded sampling, sample size and quorum, and the tracker's
// decision to close a round.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quorumCount, sampleSize } from '../../../src/federation/coordinator/config.js';
import { RoundTracker, sampleClients } from '../../../src/federation/coordinator/roundState.js';

test('sampling is seeded, independent of join order, and differs between rounds', () => {
  const ids = Array.from({ length: 20 }, (_, i) => `client-${i}`);
  const a = sampleClients(ids, 5, 42, 3);
  assert.deepEqual(sampleClients([...ids].reverse(), 5, 42, 3), a);
  assert.equal(new Set(a).size, 5);
  assert.ok(a.every((id) => ids.includes(id)));
  assert.notDeepEqual(sampleClients(ids, 5, 42, 4), a);
  assert.notDeepEqual(sampleClients(ids, 5, 43, 3), a);
  assert.deepEqual(sampleClients(ids.slice(0, 3), 5, 42, 3), ['client-0', 'client-1', 'client-2']);
});

test('sample size and quorum: fractions round up, never below 1 or above what exists', () => {
  assert.equal(sampleSize({ sampleFraction: 0.3, minClients: 2 }, 10), 3);
  assert.equal(sampleSize({ sampleFraction: 0.1, minClients: 2 }, 10), 2);
  assert.equal(sampleSize({ sampleFraction: 1, minClients: 5 }, 3), 3);
  assert.equal(sampleSize({ sampleFraction: 0.5, minClients: 1 }, 0), 0);
  assert.equal(quorumCount({ fraction: 0.5 }, 3), 2);
  assert.equal(quorumCount({ fraction: 1 }, 7), 7);
  assert.equal(quorumCount({ fraction: 0.01 }, 7), 1);
  assert.equal(quorumCount({ count: 5 }, 3), 3);
});

test('a round closes when everyone is accounted for, when the quorum is in and nobody still works, or at the deadline', () => {
  const t = new RoundTracker(1, ['a', 'b', 'c'], 2, 0, 1000);
  assert.equal(t.decide(10), 'wait');
  t.report('a', 20);
  t.disconnect('c');
  assert.equal(t.decide(30), 'wait', 'b still works');
  t.report('b', 40);
  assert.equal(t.decide(50), 'all_reported', 'quorum in, c gone: no reason to wait for the deadline');
  assert.equal(t.lastUploadAt, 40);
  assert.deepEqual(t.failures('all_reported'), [{ clientId: 'c', reason: 'disconnected during the round' }]);

  const u = new RoundTracker(2, ['a', 'b'], 2, 0, 1000);
  u.report('a', 1);
  u.disconnect('b');
  assert.equal(u.decide(5), 'wait', 'below quorum: b may come back before the deadline');
  assert.equal(u.reconnect('b'), true, 'b gets round_start again');
  assert.equal(u.reconnect('a'), false, 'a already delivered');
  assert.equal(u.decide(1000), 'deadline');
  assert.match(u.failures('deadline')[0].reason, /no update before the deadline \(1000 ms/);

  const v = new RoundTracker(3, ['a', 'b'], 1, 0, 1000);
  v.fail('a', 'update rejected (E_NON_FINITE)');
  v.fail('b', 'left: bye');
  assert.equal(v.decide(1), 'all_reported', 'nothing left to wait for');
  assert.equal(v.report('a', 2), false, 'a failed client cannot report');
  assert.equal(v.stateOf('z'), undefined);
});
