// The coordinator killed mid-round (as a crash: sockets destroyed, nothing more written) and
// resumed from its run directory continues after its last completed round with identical state,
// its clients reconnect on their own, and the federation ends exactly where an uninterrupted one does.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import { CoordinatorError } from '../../../src/federation/coordinator/errors.js';
import { LAYOUT, backend, coordinatorConfig, startClients, tempRunDir, waitFor } from './fixtures.js';

type Snapshot = ReturnType<Coordinator['snapshot']>;

function assertSameState(a: Snapshot, b: Snapshot, what: string): void {
  assert.deepEqual([a.round, a.revision], [b.round, b.revision], `${what}: round and revision`);
  for (const m of LAYOUT) {
    assert.deepEqual(a.base.get(m.module)!.data, b.base.get(m.module)!.data, `${what}: base ${m.module}`);
    assert.deepEqual(a.global.get(m.module)!.a.data, b.global.get(m.module)!.a.data, `${what}: lora_A ${m.module}`);
    assert.deepEqual(a.global.get(m.module)!.b.data, b.global.get(m.module)!.b.data, `${what}: lora_B ${m.module}`);
  }
}

async function uninterrupted(): Promise<Snapshot> {
  const { dir, cleanup } = await tempRunDir();
  const c = await Coordinator.create(coordinatorConfig(dir));
  try {
    const { runs } = startClients(await c.start(), 3);
    await Promise.all([c.run(), ...runs]);
    return c.snapshot();
  } finally {
    await c.close();
    await cleanup();
  }
}

test('a coordinator killed mid-round resumes from its run directory and finishes with the same result', { timeout: 20_000 }, async () => {
  const reference = await uninterrupted();
  const { dir, cleanup } = await tempRunDir();
  const a = await Coordinator.create(coordinatorConfig(dir));
  let afterRound1: Snapshot | undefined;
  a.on('round_closed', (r) => {
    if (r.round === 1) afterRound1 = a.snapshot();
  });
  let b: Coordinator | undefined;
  try {
    const url = await a.start();
    const { clients, runs } = startClients(url, 3);
    const runA = a.run().then(() => null, (err: unknown) => err);
    await waitFor(a, 'update_accepted', (e: { round: number }) => e.round === 2);
    await a.kill();
    const stopped = await runA;
    assert.ok(stopped instanceof CoordinatorError && stopped.code === 'STOPPED', String(stopped));
    assert.ok(afterRound1 !== undefined);

    // What a crash between "write" and "rename" leaves behind: temporaries that resume must ignore.
    await writeFile(join(dir, 'state.json.tmp-999-deadbeef'), '{"format": "fedex-coordinator-run", "round": 2, "glob');
    await writeFile(join(dir, 'global-r000002.safetensors.partial-999-deadbeef'), new Uint8Array(100));

    b = await Coordinator.resume(dir, { backend, listen: { port: Number(new URL(url).port) } });
    assertSameState(b.snapshot(), afterRound1, 'resumed state vs state after round 1');
    assert.deepEqual((await readdir(dir)).filter((n) => /tmp-|partial-/.test(n)), [], 'temporaries removed');

    const resumedJoins: boolean[] = [];
    b.on('client_joined', (e) => resumedJoins.push(e.resumed));
    assert.equal(await b.start(), url, 'same address: the clients reconnect on their own');
    const [summary, ...outcomes] = await Promise.all([b.run(), ...runs]);
    assert.equal(summary.roundsCompleted, 3);
    for (const o of outcomes) assert.equal((o as { reason: string }).reason, 'completed');
    assert.ok(resumedJoins.length >= 3 && resumedJoins.every(Boolean), `clients resumed their sessions: ${resumedJoins.join(', ')}`);
    assertSameState(b.snapshot(), reference, 'final state vs an uninterrupted federation');
    for (const c of clients) for (const m of LAYOUT) assert.deepEqual(c.base.modules.get(m.module)!.data, reference.base.get(m.module)!.data);

    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { round: number; history: { round: number }[] };
    assert.deepEqual(state.history.map((h) => h.round), [1, 2, 3], 'the metrics history has every round once');
    const events = (await readFile(join(dir, 'events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; round?: number });
    assert.deepEqual(events.filter((e) => e.type === 'round_closed').map((e) => e.round), [1, 2, 3]);
    assert.equal(events.filter((e) => e.type === 'listening').length, 2, 'both coordinator runs logged to the same event stream');
  } finally {
    await a.close();
    await b?.close();
    await cleanup();
  }
});
