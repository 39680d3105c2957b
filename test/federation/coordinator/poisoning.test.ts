// Poisoned and outlier updates, by default (issue: one token holder uploaded an adapter with every
// value 1e19; it was acknowledged and aggregated, the base reached 3e38 and every honest client
// diverged). Over loopback with a hand-driven peer beside a well-behaved one: the absurd update is
// refused before it is acknowledged, the self-reported example count is bounded by the coordinator,
// and a global model that would be broken is never kept.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LoraFactors } from '../../../src/core/lora.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import type { RoundRecord } from '../../../src/federation/coordinator/events.js';
import { adapterNorm, brokenGlobal } from '../../../src/federation/coordinator/roundRunner.js';
import { coordinatorConfig, tempRunDir } from './fixtures.js';
import { RawPeer } from './rawPeer.js';

async function withTwoPeers(overrides: Parameters<typeof coordinatorConfig>[1], body: (peers: [RawPeer, RawPeer], c: Coordinator, records: RoundRecord[], warnings: string[]) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempRunDir();
  const c = await Coordinator.create(coordinatorConfig(dir, { minClients: 2, quorum: { count: 1 }, rounds: 1, ...overrides }));
  const records: RoundRecord[] = [];
  const warnings: string[] = [];
  c.on('round_closed', (r) => records.push(r));
  c.on('warning', (w) => warnings.push(w.message));
  try {
    const url = await c.start();
    const peers = await Promise.all(['honest', 'attacker'].map(async (id) => {
      const p = await RawPeer.connect(url);
      await p.hello({ clientId: id, protocolMinor: 1 });
      await p.next('welcome');
      return p;
    })) as [RawPeer, RawPeer];
    const running = c.run();
    running.catch(() => undefined);
    await body(peers, c, records, warnings);
    await running;
  } finally {
    await c.close();
    await cleanup();
  }
}

/** The round's global adapter tensors with `f` applied to every value. */
async function upload(peer: RawPeer, round: number, f: (v: number, i: number) => number, examples = 20): Promise<void> {
  const start = await peer.next('round_start');
  assert.equal(start.params.round, round);
  const tensors = start.tensors.filter((t) => !t.name.includes('residual')).map((t) => ({ ...t, data: t.data.map(f) }));
  await peer.send({ method: 'client_update', params: { round, examples, trainLoss: 1 }, tensors });
}

describe('poisoned and outlier updates', { timeout: 30_000 }, () => {
  test('an update of 1e19s is refused with E_NORM_BOUND before it is acknowledged; the honest one aggregates; the global stays finite', async () => {
    await withTwoPeers({}, async ([honest, attacker], c, records) => {
      await upload(honest, 1, (v, i) => v + 1e-3 * Math.sin(i));
      assert.equal((await honest.next('update_ack')).params.round, 1);
      await upload(attacker, 1, () => 1e19);
      const rejected = await attacker.next('update_rejected');
      assert.equal(rejected.params.code, 'E_NORM_BOUND');
      assert.match(rejected.params.reason, /update norm .* exceeds the bound/);
      await honest.next('federation_done');
      assert.deepEqual(records[0].participants, ['honest']);
      const snap = c.snapshot();
      assert.ok(adapterNorm(snap.global) < 1e3, `global norm ${adapterNorm(snap.global)}`);
      for (const w of snap.base.values()) assert.ok(w.data.every((v) => Number.isFinite(v) && Math.abs(v) < 1e3));
    });
  });

  test('with examples weighting, a self-reported 1,000,000 examples counts as local steps × batch size, and a warning names the client', async () => {
    await withTwoPeers({ weighting: 'examples' }, async ([honest, attacker], _c, records, warnings) => {
      await upload(honest, 1, (v, i) => v + 1e-3 * Math.sin(i), 20);
      await honest.next('update_ack');
      await upload(attacker, 1, (v, i) => v + 1e-3 * Math.cos(i), 1_000_000);
      await attacker.next('update_ack');
      await honest.next('federation_done');
      // localSteps 5 × batchSize 4 = 20: both weigh the same.
      assert.deepEqual(records[0].clients.attacker.examples, 20);
      assert.deepEqual([records[0].clients.honest.weight, records[0].clients.attacker.weight], [0.5, 0.5]);
      assert.ok(warnings.some((w) => /attacker reported 1000000 examples; counted as 20/.test(w)), warnings.join('\n'));
    });
  });

  test('the operator can turn the ratio off and set an absolute bound instead', async () => {
    await withTwoPeers({ maxUpdateRatio: 0, maxUpdateNorm: 5 }, async ([honest, attacker]) => {
      await upload(honest, 1, (v, i) => v + 1e-3 * Math.sin(i));
      await honest.next('update_ack');
      await upload(attacker, 1, (v) => v + 1);
      const rejected = await attacker.next('update_rejected');
      assert.equal(rejected.params.code, 'E_NORM_BOUND');
      assert.match(rejected.params.reason, /exceeds the bound 5$/);
      await honest.next('federation_done');
    });
  });

  test('brokenGlobal: a non-finite average or base, or an exploding adapter, is refused; a sane one is not', () => {
    const f = (v: number): LoraFactors => ({ a: { shape: [1, 2], data: new Float32Array([v, v]) }, b: { shape: [2, 1], data: new Float32Array([v, 0]) } });
    const previous = new Map([['m', f(1)]]);
    const base = new Map([['m', { data: new Float32Array([1, 2]) }]]);
    assert.equal(brokenGlobal(adapterNorm(previous), { global: new Map([['m', f(1.5)]]), stepModules: [] }, base, 1000), null);
    assert.match(brokenGlobal(adapterNorm(previous), { global: new Map([['m', f(NaN)]]), stepModules: [] }, base, 1000)!, /module m: the averaged adapter holds a non-finite value/);
    assert.match(brokenGlobal(adapterNorm(previous), { global: new Map([['m', f(1e6)]]), stepModules: [] }, base, 1000)!, /over 1000 × the previous/);
    assert.equal(brokenGlobal(adapterNorm(previous), { global: new Map([['m', f(1e6)]]), stepModules: [] }, base, 0), null, 'ratio 0: no growth check');
    const infBase = new Map([['m', { data: new Float32Array([Infinity, 2]) }]]);
    assert.match(brokenGlobal(adapterNorm(previous), { global: new Map([['m', f(1)]]), stepModules: [{ module: 'm' } as never] }, infBase, 1000)!, /base weight holds a non-finite value/);
  });
});
