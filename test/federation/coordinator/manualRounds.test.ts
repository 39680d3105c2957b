// Manual rounds over loopback WebSockets with the synthetic trainer: with every client joined, no
// round starts until the operator grants one (startNextRound); each grant runs exactly one round;
// round_ready is published once per round that waits for a grant; a grant given early (before the
// clients, or during a round) is kept; stopping while a round waits for its grant rejects STOPPED.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import { CoordinatorError } from '../../../src/federation/coordinator/errors.js';
import type { CoordinatorEventMap } from '../../../src/federation/coordinator/events.js';
import type { RoundGrant } from '../../../src/federation/coordinator/roundRunner.js';
import { coordinatorConfig, startClients, tempRunDir, waitFor } from './fixtures.js';

type Ready = CoordinatorEventMap['round_ready'][0];

/** Long enough for an automatic round to have started (the synthetic round takes a few ms), short enough for the suite. */
const QUIET_MS = 300;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function manualCoordinator(rounds: number): Promise<{ coordinator: Coordinator; ready: Ready[]; started: number[]; cleanup: () => Promise<void> }> {
  const { dir, cleanup } = await tempRunDir();
  const coordinator = await Coordinator.create({ ...coordinatorConfig(dir, { rounds, minClients: 2 }), manualRounds: true });
  const ready: Ready[] = [];
  const started: number[] = [];
  coordinator.on('round_ready', (e) => ready.push(e));
  coordinator.on('round_started', (e) => started.push(e.round));
  return { coordinator, ready, started, cleanup };
}

test('manual rounds: no round without a grant, one round per grant, round_ready once per waiting round', { timeout: 20_000 }, async () => {
  // prepare: 3 rounds, 2 clients; during round 1 the operator already asks for round 2
  const { coordinator, ready, started, cleanup } = await manualCoordinator(3);
  let duringRound1: RoundGrant | undefined;
  coordinator.on('round_started', (e) => {
    if (e.round === 1) duringRound1 = coordinator.startNextRound();
  });
  try {
    const url = await coordinator.start();
    const run = coordinator.run();
    const { runs } = startClients(url, 2);

    // act + assert: everyone joined, round 1 is ready but does not start by itself
    const ready1 = await waitFor<Ready>(coordinator, 'round_ready', (e) => e.round === 1);
    assert.deepEqual(ready1, { round: 1, clients: 2, minClients: 2 });
    await sleep(QUIET_MS);
    assert.deepEqual(started, [], 'no round without a grant');

    const first = coordinator.startNextRound();
    const second = coordinator.startNextRound();
    assert.deepEqual(first, { started: true, granted: true, round: 1 });
    assert.equal(second.granted, false, 'one grant at most: a second request before the round started is refused');
    assert.match(second.reason ?? '', /round 1 was already requested/);

    // round 1 runs; the grant given during it runs round 2 right after, without round_ready
    const ready3 = waitFor<Ready>(coordinator, 'round_ready', (e) => e.round === 3);
    await waitFor(coordinator, 'round_closed', (r: { round: number }) => r.round === 2);
    assert.equal(duringRound1?.granted, true);
    assert.equal(duringRound1?.round, 2);
    assert.match(duringRound1?.reason ?? '', /round 1 is still running: round 2 starts when round 1 has closed/);

    // round 3 waits for its own grant
    await ready3;
    await sleep(QUIET_MS);
    assert.deepEqual(started, [1, 2], 'round 3 waits for its grant');
    assert.equal(coordinator.startNextRound().started, true);
    const [summary] = await Promise.all([run, ...runs]);

    assert.equal(summary.roundsCompleted, 3);
    assert.deepEqual(started, [1, 2, 3]);
    assert.deepEqual(ready.map((e) => e.round), [1, 3], 'round_ready once per round that waited for a grant');
    const after = coordinator.startNextRound();
    assert.deepEqual([after.granted, after.round], [false, null]);
    assert.match(after.reason ?? '', /no round is left/);
  } finally {
    await coordinator.close();
    await cleanup();
  }
});

test('manual rounds: a grant given before the clients joined is kept for one round; stopping while waiting rejects STOPPED', { timeout: 20_000 }, async () => {
  // prepare
  const { coordinator, ready, started, cleanup } = await manualCoordinator(3);
  // The clients retry a stopped coordinator until aborted.
  const abort = new AbortController();
  try {
    const url = await coordinator.start();
    const run = coordinator.run().then(() => null, (err: unknown) => err);

    // act: the operator asks before anyone joined
    const early = coordinator.startNextRound();
    const ready2 = waitFor<Ready>(coordinator, 'round_ready', (e) => e.round === 2);
    const { runs } = startClients(url, 2, () => ({ signal: abort.signal }));
    await ready2;
    await coordinator.close();
    const stopped = await run;

    // assert
    assert.deepEqual([early.started, early.granted, early.round], [false, true, 1]);
    assert.match(early.reason ?? '', /waiting for clients \(0 of 2 joined\): round 1 starts when 2 clients have joined/);
    assert.deepEqual(started, [1], 'the early grant ran exactly one round');
    assert.deepEqual(ready.map((e) => e.round), [2], 'round 1 never waited for a grant');
    assert.ok(stopped instanceof CoordinatorError && stopped.code === 'STOPPED', String(stopped));
    assert.equal(coordinator.startNextRound().granted, false, 'no grant once stopping');
    abort.abort();
    await Promise.allSettled(runs);
  } finally {
    abort.abort();
    await coordinator.close();
    await cleanup();
  }
});

test('manual rounds are not persisted: a run stopped while waiting resumes with automatic rounds (and could choose manual again)', { timeout: 20_000 }, async () => {
  // prepare: round 1 by grant, then stop while round 2 waits
  const { dir, cleanup } = await tempRunDir();
  const first = await Coordinator.create({ ...coordinatorConfig(dir, { rounds: 2, minClients: 1 }), manualRounds: true });
  const abort = new AbortController();
  let resumed: Coordinator | undefined;
  try {
    const url = await first.start();
    const stopped = first.run().then(() => null, (err: unknown) => err);
    const ready2 = waitFor<Ready>(first, 'round_ready', (e) => e.round === 2);
    first.startNextRound();
    const { runs } = startClients(url, 1, () => ({ signal: abort.signal }));
    await ready2;
    await first.close();
    assert.ok((await stopped) instanceof CoordinatorError);
    // act: resume on the same port without manualRounds; the client reconnects by itself
    resumed = await Coordinator.resume(dir, { backend: first.backend, listen: { port: Number(new URL(url).port) } });
    const [summary] = await Promise.all([resumed.run(), ...runs]);
    // assert
    assert.equal(resumed.manualRounds, false);
    assert.equal(summary.roundsCompleted, 2, 'round 2 ran without a grant');
    assert.ok(!('manualRounds' in resumed.plan), 'not part of the persisted plan');
  } finally {
    abort.abort();
    await first.close();
    await resumed?.close();
    await cleanup();
  }
});

test('automatic rounds: startNextRound changes nothing and says why', async () => {
  const { dir, cleanup } = await tempRunDir();
  const coordinator = await Coordinator.create(coordinatorConfig(dir));
  try {
    const grant = coordinator.startNextRound();
    assert.deepEqual([grant.started, grant.granted, grant.round], [false, false, null]);
    assert.match(grant.reason ?? '', /not started with manual rounds/);
  } finally {
    await coordinator.close();
    await cleanup();
  }
});
