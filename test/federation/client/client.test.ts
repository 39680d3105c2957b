// The client end: clients that join late catch up with a combined base update (factored, or dense
// for a client that does not take factored residuals) and end on the coordinator's base; a client
// with a foreign base or a wrong layout stops with a clear error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import { FederationClient } from '../../../src/federation/client/client.js';
import { ClientError } from '../../../src/federation/client/errors.js';
import { createSyntheticBase, createSyntheticTrainer } from '../../../src/federation/client/syntheticTrainer.js';
import type { Matrix } from '../../../src/core/tensor.js';
import { LAYOUT, clientOptions, coordinatorConfig, recording, startClients, tempRunDir, waitFor, type Seen } from '../coordinator/fixtures.js';

function relErr(a: Matrix<Float32Array>, b: Matrix<Float32Array>): number {
  let err = 0;
  let size = 0;
  for (let i = 0; i < a.data.length; i++) {
    err = Math.max(err, Math.abs(a.data[i] - b.data[i]));
    size = Math.max(size, Math.abs(b.data[i]));
  }
  return err / size;
}

test('clients joining after two FedEx rounds catch up on the base (combined update, factored or dense) and take part', { timeout: 20_000 }, async () => {
  const { dir, cleanup } = await tempRunDir();
  const coordinator = await Coordinator.create(coordinatorConfig(dir, { minClients: 2 }));
  const afterRound = new Map<number, ReturnType<Coordinator['snapshot']>>();
  coordinator.on('round_closed', (r) => afterRound.set(r.round, coordinator.snapshot()));
  try {
    const url = await coordinator.start();
    const early = startClients(url, 2);
    await waitFor(coordinator, 'client_joined', (e: { clients: number }) => e.clients === 2);
    const running = coordinator.run();
    await waitFor(coordinator, 'round_started', (e: { round: number }) => e.round === 2);
    const seen = [new Map<number, Seen>(), new Map<number, Seen>()];
    const late = [2, 3].map((i, k) => new FederationClient(clientOptions(url, i, {
      factoredResidual: i === 3,
      trainer: recording(createSyntheticTrainer({ seed: 100 + i }), seen[k]),
    })));
    const updates: { updated: number }[] = [];
    late[0].on('round_started', (e) => updates.push({ updated: e.updatedModules.length }));
    const [summary, ...outcomes] = await Promise.all([running, ...early.runs, ...late.map((c) => c.run())]);
    assert.equal(summary.roundsCompleted, 3);
    const final = afterRound.get(3)!;
    assert.deepEqual(coordinator.snapshot().base.get(LAYOUT[0].module)!.data, final.base.get(LAYOUT[0].module)!.data);
    for (const [k, s] of seen.entries()) {
      assert.deepEqual([...s.keys()], [3], 'late clients trained in round 3 only');
      assert.equal(s.get(3)!.baseRevision, 2, 'from revision 0 to 2 in one update');
      for (const m of LAYOUT) assert.ok(relErr(s.get(3)!.base.get(m.module)!, afterRound.get(2)!.base.get(m.module)!) < 1e-6, `late client ${k} ${m.module}`);
    }
    assert.equal(updates[0].updated, LAYOUT.length, 'every module was brought up to date');
    for (const o of outcomes.slice(0, 2) as { base: { modules: ReadonlyMap<string, Matrix<Float32Array>> } }[]) {
      for (const m of LAYOUT) assert.deepEqual(o.base.modules.get(m.module)!.data, final.base.get(m.module)!.data, 'early clients: same bits');
    }
    for (const o of outcomes.slice(2) as { base: { modules: ReadonlyMap<string, Matrix<Float32Array>> }; baseRevision: number }[]) {
      assert.equal(o.baseRevision, 3);
      for (const m of LAYOUT) assert.ok(relErr(o.base.modules.get(m.module)!, final.base.get(m.module)!) < 1e-6, 'late clients: float32 round-off');
    }
    assert.deepEqual(afterRound.get(3)!.round, 3);
  } finally {
    await coordinator.close();
    await cleanup();
  }
});

test("a client whose base differs from the federation's, or lacks a layout module, stops with a clear error", { timeout: 10_000 }, async () => {
  const { dir, cleanup } = await tempRunDir();
  const coordinator = await Coordinator.create(coordinatorConfig(dir, { minClients: 1 }));
  try {
    const url = await coordinator.start();
    const foreign = createSyntheticBase(LAYOUT, 8);
    const a = new FederationClient(clientOptions(url, 0, { base: foreign }));
    await assert.rejects(a.run(), (err: unknown) => err instanceof ClientError && err.code === 'E_BASE_MISMATCH' && /does not transfer models/.test(err.message));
    const partial = { hash: coordinator.plan.baseModelHash, load: async () => new Map([...(await foreign.load(LAYOUT))].slice(1)) };
    const b = new FederationClient(clientOptions(url, 1, { base: partial }));
    await assert.rejects(b.run(), (err: unknown) => err instanceof ClientError && err.code === 'C_BASE_LAYOUT' && err.message.includes(LAYOUT[0].module));
  } finally {
    await coordinator.close();
    await cleanup();
  }
});

test('a client that offers bfloat16 uploads in bfloat16 when the coordinator asks for it: half the uplink bytes', { timeout: 10_000 }, async () => {
  const { dir, cleanup } = await tempRunDir();
  const coordinator = await Coordinator.create(coordinatorConfig(dir, { minClients: 2, rounds: 1, uplinkDtype: 'bfloat16', quorum: { count: 2 } }));
  const uploads = new Map<string, number>();
  coordinator.on('update_accepted', (e) => uploads.set(e.clientId, e.bytes));
  try {
    const url = await coordinator.start();
    const { runs } = startClients(url, 2, (i) => (i === 0 ? { uplinkDtypes: ['bfloat16'] } : {}));
    const [summary] = await Promise.all([coordinator.run(), ...runs]);
    assert.equal(summary.roundsCompleted, 1);
    const raw = LAYOUT.reduce((n, m) => n + 4 * m.rank * (m.in + m.out), 0);
    assert.ok(uploads.get('c1')! > raw && uploads.get('c1')! < raw + 2048, `float32 client: ${uploads.get('c1')} bytes`);
    assert.ok(uploads.get('c0')! > raw / 2 && uploads.get('c0')! < raw / 2 + 2048, `bfloat16 client: ${uploads.get('c0')} bytes`);
  } finally {
    await coordinator.close();
    await cleanup();
  }
});
