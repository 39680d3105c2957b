// Robust aggregation against a poisoning client, over loopback WebSockets: 5 hand-driven peers, 4
// honest (small, distinct updates) and 1 attacker whose update is large but inside the default norm
// bound (it is acknowledged and aggregated). With `median` the global model stays within half the
// honest clients' spread of their coordinate-wise median, coordinate by coordinate; with the plain
// mean it is dragged far away. FedEx's dense base update is what keeps the median exact for the model.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LoraFactors } from '../../../src/core/lora.js';
import type { AggregationRule } from '../../../src/core/robust.js';
import type { Matrix } from '../../../src/core/tensor.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import { planScaling } from '../../../src/federation/coordinator/config.js';
import type { RoundRecord } from '../../../src/federation/coordinator/events.js';
import { adapterFromTensors } from '../../../src/federation/shared/adapterWire.js';
import { backend, coordinatorConfig, effective, LAYOUT, tempRunDir } from './fixtures.js';
import { RawPeer } from './rawPeer.js';

const HONEST = ['honest-1', 'honest-2', 'honest-3', 'honest-4'];
/** Added to every value of the attacker's A and B: ‖update − global‖ = 2·√400 = 40, far inside the default bound (1000 × ‖global‖ ≈ 1,600). */
const OUTLIER_SHIFT = 2;

interface AttackOutcome {
  readonly record: RoundRecord;
  readonly warnings: string[];
  /** Effective weights W + s·B·A per module (float64, stored layout): the global model and the honest clients' models. */
  readonly global: Map<string, Float64Array>;
  readonly honest: Map<string, Float64Array[]>;
  readonly base: Map<string, Matrix<Float32Array>>;
}

/** One FedEx round with 5 peers, the last one the attacker. */
async function attackRound(aggregation?: AggregationRule): Promise<AttackOutcome> {
  const { dir, cleanup } = await tempRunDir();
  const c = await Coordinator.create(coordinatorConfig(dir, { minClients: 5, quorum: { count: 5 }, rounds: 1, ...(aggregation !== undefined ? { aggregation } : {}) }));
  const records: RoundRecord[] = [];
  const warnings: string[] = [];
  c.on('round_closed', (r) => records.push(r));
  c.on('warning', (w) => warnings.push(w.message));
  const base = c.snapshot().base;
  const uploads = new Map<string, Map<string, LoraFactors>>();
  try {
    const url = await c.start();
    const ids = [...HONEST, 'attacker'];
    const peers = await Promise.all(ids.map(async (id) => {
      const p = await RawPeer.connect(url);
      await p.hello({ clientId: id, protocolMinor: 1 });
      await p.next('welcome');
      return p;
    }));
    const running = c.run();
    running.catch(() => undefined);
    for (const [n, peer] of peers.entries()) {
      const start = await peer.next('round_start');
      const f = ids[n] === 'attacker' ? (v: number): number => v + OUTLIER_SHIFT : (v: number, i: number): number => v + 1e-3 * Math.sin(0.7 * i * (n + 1) + n);
      const tensors = start.tensors.filter((t) => !t.name.includes('residual')).map((t) => ({ ...t, data: t.data.map(f) }));
      uploads.set(ids[n], adapterFromTensors(LAYOUT, tensors));
      await peer.send({ method: 'client_update', params: { round: 1, examples: 20, trainLoss: 1 }, tensors });
      assert.equal((await peer.next('update_ack')).params.round, 1, `${ids[n]}'s update is accepted`);
    }
    await peers[0].next('federation_done');
    await running;
    const snap = c.snapshot();
    const global = new Map<string, Float64Array>();
    const honest = new Map<string, Float64Array[]>();
    for (const m of LAYOUT) {
      const scale = planScaling(c.plan, m.rank);
      global.set(m.module, effective(snap.base.get(m.module)!, snap.global.get(m.module)!, scale, m.fanInFanOut === true));
      honest.set(m.module, HONEST.map((id) => effective(base.get(m.module)!, uploads.get(id)!.get(m.module)!, scale, m.fanInFanOut === true)));
    }
    return { record: records[0], warnings, global, honest, base };
  } finally {
    await c.close();
    await cleanup();
  }
}

/** Per coordinate: |global − median of the honest models| and half the honest spread (max − min). */
function distances(global: Float64Array, honest: readonly Float64Array[]): { worstExcess: number; maxDistance: number; maxHalfSpread: number } {
  let worstExcess = -Infinity;
  let maxDistance = 0;
  let maxHalfSpread = 0;
  for (let x = 0; x < global.length; x++) {
    const v = honest.map((h) => h[x]).sort((a, b) => a - b);
    const median = (v[1] + v[2]) / 2;
    const halfSpread = (v[3] - v[0]) / 2;
    const d = Math.abs(global[x] - median);
    worstExcess = Math.max(worstExcess, d - halfSpread);
    maxDistance = Math.max(maxDistance, d);
    maxHalfSpread = Math.max(maxHalfSpread, halfSpread);
  }
  return { worstExcess, maxDistance, maxHalfSpread };
}

describe('robust aggregation against a poisoning client (5 peers over loopback)', { timeout: 60_000 }, () => {
  test('median: the global model stays within half the honest spread of the honest median; the mean is dragged away', async () => {
    const median = await attackRound({ name: 'median' });
    assert.deepEqual(median.record.participants, [...HONEST, 'attacker'].sort(), 'the attacker was aggregated, not refused');
    assert.equal(median.record.aggregation, 'median');
    assert.deepEqual(median.warnings, []);
    // FedEx under the median folds a dense D into every module's base.
    assert.ok(median.record.modules.every((m) => m.residualForm === 'dense'), JSON.stringify(median.record.modules.map((m) => m.residualForm)));
    const mean = await attackRound();
    assert.equal(mean.record.aggregation, 'mean');
    for (const m of LAYOUT) {
      const w0 = median.base.get(m.module)!.data;
      // Stated distance: the median of 4 honest values and 1 outlier lies between the 2nd and 3rd honest
      // values, so within half the honest spread of their median; plus float32 round-off of W0' (1e-6·max|W0|).
      const tol = 1e-6 * Math.max(...w0.map(Math.abs));
      const robust = distances(median.global.get(m.module)!, median.honest.get(m.module)!);
      assert.ok(robust.maxHalfSpread > 0, 'the honest clients differ');
      assert.ok(robust.worstExcess <= tol, `${m.module}: the median is ${robust.worstExcess} beyond half the honest spread`);
      const plain = distances(mean.global.get(m.module)!, mean.honest.get(m.module)!);
      assert.ok(plain.maxDistance > 0.5, `${m.module}: the mean moved only ${plain.maxDistance}`);
      assert.ok(plain.maxDistance > 100 * robust.maxDistance, `${m.module}: mean ${plain.maxDistance} vs median ${robust.maxDistance}`);
    }
  });

  test('the rule is part of the persisted plan: a resumed coordinator aggregates with it, without the accumulator', async () => {
    const { dir, cleanup } = await tempRunDir();
    try {
      const rule: AggregationRule = { name: 'trimmed-mean', trim: 0.25 };
      const first = await Coordinator.create(coordinatorConfig(dir, { minClients: 4, quorum: { count: 4 }, aggregation: rule, incrementalAggregation: 'auto' }));
      assert.deepEqual(first.strategy.aggregation, rule);
      assert.equal(first.plan.incrementalAggregation, 'off');
      await first.close();
      const resumed = await Coordinator.resume(dir, { backend });
      try {
        assert.deepEqual(resumed.plan.aggregation, rule);
        assert.deepEqual(resumed.strategy.aggregation, rule);
      } finally {
        await resumed.close();
      }
    } finally {
      await cleanup();
    }
  });

  test('a trimmed mean with too few clients for its trim is refused when the federation is configured', async () => {
    const { dir, cleanup } = await tempRunDir();
    try {
      await assert.rejects(
        Coordinator.create(coordinatorConfig(dir, { minClients: 4, quorum: { count: 4 }, aggregation: { name: 'trimmed-mean', trim: 0.2 } })),
        /aggregation trimmed-mean 0\.2: a round may aggregate as few as 4 updates .*drops ⌊0\.2·4⌋ = 0 of 4 clients.*needs at least 5 clients/,
      );
      await assert.rejects(
        Coordinator.create(coordinatorConfig(dir, { weighting: 'examples', aggregation: { name: 'median' } })),
        /aggregation median is unweighted .*cannot be combined with weighting 'examples'/,
      );
    } finally {
      await cleanup();
    }
  });
});
