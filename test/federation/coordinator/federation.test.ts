// Three clients, three rounds, over real WebSockets on 127.0.0.1 with the synthetic trainer. After
// every round the coordinator's model W0' + s·B̄Ā must equal the weighted mean of the clients'
// models W0 + s·B_i A_i (float64 reference, layout-aware) for FedEx, and must NOT for FedIT (error
// = the reported deviation); clients' base copies must equal the coordinator's bit for bit.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loraScaling } from '../../../src/core/lora.js';
import { createOrtProductBackend } from '../../../src/runtime/kernels/factoredUpdate.js';
import type { Matrix } from '../../../src/core/tensor.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import type { RoundRecord } from '../../../src/federation/coordinator/events.js';
import type { StrategyName } from '../../../src/core/strategies/types.js';
import { createSyntheticTrainer } from '../../../src/federation/client/syntheticTrainer.js';
import type { ClientOutcome } from '../../../src/federation/client/client.js';
import { LAYOUT, coordinatorConfig, effective, maxAbs, recording, startClients, tempRunDir, type Seen } from './fixtures.js';

interface RoundCheck {
  record: RoundRecord;
  snapshot: ReturnType<Coordinator['snapshot']>;
}

async function federate(method: StrategyName, weighting: 'uniform' | 'examples', ort = false): Promise<{ checks: RoundCheck[]; seen: Map<number, Seen>[]; outcomes: ClientOutcome[]; start: ReturnType<Coordinator['snapshot']> }> {
  const { dir, cleanup } = await tempRunDir();
  // With `ort`, the coordinator and every client get their own onnxruntime backend, as separate processes would.
  const coordinator = await Coordinator.create(coordinatorConfig(dir, { method, weighting, ...(ort ? { backend: createOrtProductBackend() } : {}) }));
  const start = coordinator.snapshot();
  const checks: RoundCheck[] = [];
  coordinator.on('round_closed', (record) => checks.push({ record, snapshot: coordinator.snapshot() }));
  try {
    const url = await coordinator.start();
    const seen = [0, 1, 2].map(() => new Map<number, Seen>());
    const { runs } = startClients(url, 3, (i) => ({
      trainer: recording(createSyntheticTrainer({ seed: 100 + i, numExamples: 50 * (i + 1), noise: 0.05 }), seen[i]),
      ...(ort ? { backend: createOrtProductBackend() } : {}),
    }));
    const [summary, ...outcomes] = await Promise.all([coordinator.run(), ...runs]);
    assert.equal((summary as { roundsCompleted: number }).roundsCompleted, 3);
    return { checks, seen, outcomes: outcomes as ClientOutcome[], start };
  } finally {
    await coordinator.close();
    if (ort) await coordinator.backend.dispose?.();
    await cleanup();
  }
}

/** Per module: max |coordinator − reference| and the reference's update size, float64. */
function compare(check: RoundCheck, before: Map<string, Matrix<Float32Array>>, seen: Map<number, Seen>[], round: number, weighting: 'uniform' | 'examples'): { module: string; err: number; errFro: number; size: number }[] {
  const ids = check.record.participants;
  const examples = ids.map((id) => check.record.clients[id].examples);
  const total = examples.reduce((a, b) => a + b, 0);
  const weights = weighting === 'uniform' ? ids.map(() => 1 / ids.length) : examples.map((e) => e / total);
  return LAYOUT.map((m) => {
    const s = loraScaling(4, m.rank, false);
    const ref = new Float64Array(before.get(m.module)!.data.length);
    ids.forEach((id, k) => {
      const i = Number(id.slice(1));
      const got = seen[i].get(round)!;
      const e = effective(got.base.get(m.module)!, got.result.adapter.get(m.module)!, s, m.fanInFanOut === true);
      for (let j = 0; j < ref.length; j++) ref[j] += weights[k] * e[j];
    });
    const mine = effective(check.snapshot.base.get(m.module)!, check.snapshot.global.get(m.module)!, s, m.fanInFanOut === true);
    const w0 = before.get(m.module)!.data;
    let err = 0;
    let errFro = 0;
    let size = 0;
    for (let j = 0; j < ref.length; j++) {
      err = Math.max(err, Math.abs(mine[j] - ref[j]));
      errFro += (mine[j] - ref[j]) ** 2;
      size = Math.max(size, Math.abs(ref[j] - w0[j]));
    }
    return { module: m.module, err, errFro: Math.sqrt(errFro), size };
  });
}

function sameBits(a: Map<string, Matrix<Float32Array>> | ReadonlyMap<string, Matrix<Float32Array>>, b: Map<string, Matrix<Float32Array>>, what: string): void {
  for (const m of LAYOUT) assert.deepEqual(a.get(m.module)!.data, b.get(m.module)!.data, `${what}: module ${m.module}`);
}

describe('federation over loopback WebSockets, 3 clients × 3 rounds', { timeout: 20_000 }, () => {
  for (const ort of [false, true]) {
    test(`FedEx (examples weighting, ${ort ? 'onnxruntime' : 'TypeScript'} base updates): the global model equals the weighted mean of the clients' models after every round`, async () => {
      const { checks, seen, outcomes, start } = await federate('fedex', 'examples', ort);
      assert.equal(checks.length, 3);
      let before = start.base;
      for (const [r, check] of checks.entries()) {
        const round = r + 1;
        assert.deepEqual(check.record.participants, ['c0', 'c1', 'c2']);
        assert.equal(check.record.baseRevision, round, 'every FedEx round with 3 different clients changes the base');
        // Every client trained on the base the coordinator held before the round, bit for bit.
        for (const s of seen) sameBits(s.get(round)!.base, before, `round ${round} client base vs coordinator`);
        for (const c of compare(check, before, seen, round, 'examples')) {
          assert.ok(c.size > 1e-4, `${c.module}: the round changed the model`);
          // float32 round-off relative to the update, plus a few ulps of W0 (|W0| ≲ 0.1).
          assert.ok(c.err <= 1e-5 * c.size + 5e-8, `round ${round} ${c.module}: max error ${c.err} vs update ${c.size}`);
        }
        assert.ok(check.record.modules.some((m) => m.residualForm === 'factored') && check.record.modules.some((m) => m.residualForm === 'dense'));
        before = check.snapshot.base;
      }
      for (const o of outcomes) {
        assert.equal(o.reason, 'completed');
        assert.equal(o.baseRevision, 3);
        sameBits(o.base!.modules, checks[2].snapshot.base, 'final client base vs coordinator');
        for (const m of LAYOUT) assert.deepEqual(o.global!.get(m.module)!.a.data, checks[2].snapshot.global.get(m.module)!.a.data);
      }
    });
  }

  test('FedIT: the global model misses the ideal one by exactly the reported deviation', async () => {
    const { checks, seen, start } = await federate('fedit', 'uniform');
    for (const [r, check] of checks.entries()) {
      assert.equal(check.record.baseRevision, 0, 'FedIT never changes the base');
      sameBits(check.snapshot.base, start.base, 'FedIT base');
      for (const c of compare(check, start.base, seen, r + 1, 'uniform')) {
        const reported = check.record.modules.find((m) => m.module === c.module)!.deviation!;
        assert.ok(c.errFro > 1e-4 * c.size, `round ${r + 1} ${c.module}: FedIT should be inexact (error ${c.errFro})`);
        assert.ok(Math.abs(c.errFro - reported) <= 1e-4 * reported + 1e-7, `round ${r + 1} ${c.module}: error ‖·‖_F ${c.errFro} vs reported deviation ${reported}`);
      }
    }
    assert.ok(maxAbs(checks[2].snapshot.global.get(LAYOUT[0].module)!.b.data) > 0);
  });
});
