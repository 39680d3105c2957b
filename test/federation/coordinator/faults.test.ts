// Faults with real clients: one killed mid-round, one stalled past the deadline, one whose
// connection drops mid-round and comes back. The federation goes on and nothing is lost.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import type { RoundRecord } from '../../../src/federation/coordinator/events.js';
import { createSyntheticTrainer } from '../../../src/federation/client/syntheticTrainer.js';
import type { LocalTrainer } from '../../../src/federation/client/trainer.js';
import { ClientError } from '../../../src/federation/client/errors.js';
import { coordinatorConfig, startClients, tempRunDir, waitFor } from './fixtures.js';

/** A trainer that takes `delayMs(round)` before answering (abortable). */
function slow(seed: number, delayMs: (round: number) => number, calls?: number[]): LocalTrainer {
  const inner = createSyntheticTrainer({ seed });
  return {
    async train(round, global, base, config, signal) {
      calls?.push(round);
      const ms = delayMs(round);
      if (ms > 0) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, ms);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            reject(new Error('aborted'));
          }, { once: true });
        });
      }
      return inner.train(round, global, base, config, signal);
    },
  };
}

async function withCoordinator<T>(overrides: Parameters<typeof coordinatorConfig>[1], body: (c: Coordinator, url: string, records: RoundRecord[]) => Promise<T>): Promise<T> {
  const { dir, cleanup } = await tempRunDir();
  const coordinator = await Coordinator.create(coordinatorConfig(dir, overrides));
  const records: RoundRecord[] = [];
  coordinator.on('round_closed', (r) => records.push(r));
  try {
    return await body(coordinator, await coordinator.start(), records);
  } finally {
    await coordinator.close();
    await cleanup();
  }
}

test('a client killed mid-round (socket destroyed) does not hold the round: it closes on quorum', { timeout: 15_000 }, async () => {
  await withCoordinator({ rounds: 2, minClients: 2, quorum: { count: 2 }, roundTimeoutMs: 10_000 }, async (coordinator, url, records) => {
    const { clients, runs } = startClients(url, 3, (i) => (i === 2 ? { trainer: slow(102, () => 5_000) } : {}));
    const killedRun = runs[2].then(() => null, (err: unknown) => err);
    await waitFor(coordinator, 'client_joined', (e: { clients: number }) => e.clients === 3);
    const running = coordinator.run();
    await waitFor(clients[2], 'round_started');
    clients[2].kill();
    const [summary] = await Promise.all([running, runs[0], runs[1]]);
    assert.equal(summary.roundsCompleted, 2, 'both rounds aggregated');
    const r1 = records[0];
    assert.deepEqual(r1.participants, ['c0', 'c1']);
    assert.equal(r1.closedBy, 'all_reported', 'closed as soon as the quorum was in, not at the deadline');
    assert.ok(r1.durationMs < 5_000);
    assert.deepEqual(r1.failures.map((f) => f.clientId), ['c2']);
    assert.match(r1.failures[0].reason, /connection closed|disconnected/);
    assert.deepEqual(records[1].participants, ['c0', 'c1']);
    const err = await killedRun;
    assert.ok(err instanceof ClientError && err.code === 'C_ABORTED', String(err));
  });
});

test('a client that stalls past the deadline is a failure; the round closes with the others and it rejoins the next', { timeout: 15_000 }, async () => {
  await withCoordinator({ rounds: 2, roundTimeoutMs: 700 }, async (coordinator, url, records) => {
    const failed: string[] = [];
    coordinator.on('client_failed', (e) => failed.push(`${e.round}:${e.clientId}:${e.reason}`));
    const { runs } = startClients(url, 3, (i) => (i === 2 ? { trainer: slow(102, (r) => (r === 1 ? 60_000 : 0)) } : {}));
    const [summary] = await Promise.all([coordinator.run(), ...runs]);
    assert.equal(summary.roundsCompleted, 2);
    assert.equal(records[0].closedBy, 'deadline');
    assert.deepEqual(records[0].participants, ['c0', 'c1']);
    assert.equal(failed.length, 1);
    assert.match(failed[0], /^1:c2:no update before the deadline \(700 ms after round_start\)$/);
    assert.deepEqual(records[1].participants, ['c0', 'c1', 'c2'], 'the stalled client takes part in the next round');
  });
});

test('a client whose connection drops mid-round reconnects and delivers the same round (training is not redone)', { timeout: 15_000 }, async () => {
  await withCoordinator({ rounds: 1, minClients: 2, quorum: { count: 2 } }, async (coordinator, url, records) => {
    const calls: number[] = [];
    const { clients, runs } = startClients(url, 2, (i) => (i === 1 ? { trainer: slow(101, () => 400, calls) } : {}));
    let connects = 0;
    clients[1].on('connected', () => connects++);
    const running = coordinator.run();
    await waitFor(clients[1], 'round_started');
    clients[1].dropConnection();
    const [summary] = await Promise.all([running, ...runs]);
    assert.equal(summary.roundsCompleted, 1);
    assert.deepEqual(records[0].participants, ['c0', 'c1']);
    assert.equal(records[0].closedBy, 'all_reported');
    assert.equal(connects, 2, 'one reconnect');
    assert.deepEqual(calls, [1], 'the trainer ran once for round 1');
  });
});

test('a client that leaves mid-round is counted as a failure with its reason; the round closes without waiting for the deadline', { timeout: 15_000 }, async () => {
  await withCoordinator({ rounds: 1, minClients: 2, quorum: { count: 1 } }, async (coordinator, url, records) => {
    const { clients, runs } = startClients(url, 2, (i) => (i === 1 ? { trainer: slow(101, () => 5_000) } : {}));
    await waitFor(coordinator, 'client_joined', (e: { clients: number }) => e.clients === 2);
    const running = coordinator.run();
    await waitFor(clients[1], 'round_started');
    await clients[1].leave('battery low');
    const [summary, first, second] = await Promise.all([running, ...runs]);
    assert.equal(summary.roundsCompleted, 1);
    assert.deepEqual(records[0].participants, ['c0']);
    assert.equal(records[0].closedBy, 'all_reported');
    assert.deepEqual(records[0].failures, [{ clientId: 'c1', reason: 'left: battery low' }]);
    assert.deepEqual([(first as { reason: string }).reason, (second as { reason: string }).reason], ['completed', 'left']);
  });
});
