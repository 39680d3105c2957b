// Client-level DP on a real coordinator: 3 clients × 3 rounds over loopback WebSockets with the
// synthetic trainer. With σ = 0 the global model after every round is W0 + s·B̄_gĀ_g + the mean of
// the clients' clipped updates (joint clipping over all modules, both weight layouts; float64
// reference from what the clients trained); with σ > 0 (node:crypto noise) every round record
// carries the ε the accountant gives for that many releases, clients hold the coordinator's base
// bit for bit, and what clients are told about the round leaves out the participants' losses.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gaussianPrivacySpent } from '../../../src/core/privacy/accountant.js';
import { loraScaling } from '../../../src/core/lora.js';
import type { ClientOutcome } from '../../../src/federation/client/client.js';
import { createSyntheticTrainer } from '../../../src/federation/client/syntheticTrainer.js';
import { resolvePlan } from '../../../src/federation/coordinator/config.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import type { RoundRecord } from '../../../src/federation/coordinator/events.js';
import { DEFAULT_DP_DELTA } from '../../../src/federation/coordinator/privacyPlan.js';
import { PrivacyLedger } from '../../../src/federation/coordinator/privateRound.js';
import { createOrtProductBackend } from '../../../src/runtime/kernels/factoredUpdate.js';
import type { ParamsOf } from '../../../src/federation/protocol/messages.js';
import { LAYOUT, coordinatorConfig, maxAbs, product64, recording, startClients, tempRunDir, type Seen } from './fixtures.js';

interface Check {
  readonly record: RoundRecord;
  readonly snapshot: ReturnType<Coordinator['snapshot']>;
}

async function federate(privacy: { clip: number; noiseMultiplier: number },
  ort = false): Promise<{ checks: Check[]; seen: Map<number, Seen>[]; closed: ParamsOf<'round_closed'>[]; outcomes: ClientOutcome[]; start: ReturnType<Coordinator['snapshot']> }> {
  const { dir, cleanup } = await tempRunDir();
  // With `ort`, the coordinator and every client get their own onnxruntime backend, as separate processes would.
  const coordinator = await Coordinator.create(coordinatorConfig(dir, { privacy, quorum: { count: 3 }, ...(ort ? { backend: createOrtProductBackend() } : {}) }));
  const start = coordinator.snapshot();
  const checks: Check[] = [];
  coordinator.on('round_closed', (record) => checks.push({ record, snapshot: coordinator.snapshot() }));
  try {
    const url = await coordinator.start();
    const seen = [0, 1, 2].map(() => new Map<number, Seen>());
    const { clients, runs } = startClients(url, 3, (i) => ({
      trainer: recording(createSyntheticTrainer({ seed: 100 + i, numExamples: 50, noise: 0.05 }), seen[i]),
      ...(ort ? { backend: createOrtProductBackend() } : {}),
    }));
    const closed: ParamsOf<'round_closed'>[] = [];
    clients[0].on('round_closed', (p) => closed.push(p));
    const [summary, ...outcomes] = await Promise.all([coordinator.run(), ...runs]);
    assert.equal((summary as { roundsCompleted: number }).roundsCompleted, 3);
    return { checks, seen, closed, outcomes: outcomes as ClientOutcome[], start };
  } finally {
    await coordinator.close();
    if (ort) await coordinator.backend.dispose?.();
    await cleanup();
  }
}

/** Stored index of (o, x) for a module. */
const at = (fanInFanOut: boolean, out: number, inF: number, o: number, x: number): number => (fanInFanOut ? x * out + o : o * inF + x);

describe('client-level DP over loopback, 3 clients × 3 rounds', { timeout: 30_000 }, () => {
  for (const ort of [false, true])
    test(`σ = 0 (${ort ? 'onnxruntime' : 'TypeScript'} products): after every round the global model is W0 + s·B̄_gĀ_g + the mean of the jointly clipped client updates`, async () => {
      const clip = 0.05;
      const { checks, seen, start, outcomes } = await federate({ clip, noiseMultiplier: 0 }, ort);
      let before = start;
      for (const [r, { record, snapshot }] of checks.entries()) {
        const round = r + 1;
        const ids = record.participants;
        // The reference: each client's update vector over all modules, its norm and clipping factor, in float64.
        const results = ids.map((id) => seen[Number(id.slice(1))].get(round)!.result.adapter);
        const norms = results.map((adapter) => Math.sqrt(LAYOUT.reduce((sq, m) => {
          const s = loraScaling(4, m.rank, false);
          const g = before.global.get(m.module)!;
          const c = adapter.get(m.module)!;
          const gp = product64(g.b, g.a);
          const cp = product64(c.b, c.a);
          let acc = 0;
          for (let x = 0; x < g.a.data.length; x++) acc += (c.a.data[x] - g.a.data[x]) ** 2;
          for (let x = 0; x < g.b.data.length; x++) acc += (c.b.data[x] - g.b.data[x]) ** 2;
          for (let x = 0; x < gp.length; x++) acc += (s * (cp[x] - gp[x])) ** 2;
          return sq + acc;
        }, 0)));
        const gammas = norms.map((n) => Math.min(1, clip / n));
        assert.ok(gammas.some((g) => g < 1), `round ${round}: some client is clipped (norms ${norms.join(', ')})`);
        assert.equal(record.privacy!.clipped, gammas.filter((g) => g < 1).length);
        record.privacy!.updateNorms.forEach((n, i) => assert.ok(Math.abs(n - norms[i]) <= 1e-9 * norms[i], `norm of ${ids[i]}`));
        for (const m of LAYOUT) {
          const s = loraScaling(4, m.rank, false);
          const g = before.global.get(m.module)!;
          const gp = product64(g.b, g.a);
          const mean = new Float64Array(gp.length);
          results.forEach((adapter, i) => {
            const cp = product64(adapter.get(m.module)!.b, adapter.get(m.module)!.a);
            for (let x = 0; x < gp.length; x++) mean[x] += (gammas[i] / 3) * s * (cp[x] - gp[x]);
          });
          const now = snapshot.global.get(m.module)!;
          const np = product64(now.b, now.a);
          const w0 = before.base.get(m.module)!.data;
          const w1 = snapshot.base.get(m.module)!.data;
          let err = 0;
          for (let o = 0; o < m.out; o++)
            for (let x = 0; x < m.in; x++) {
              const k = at(m.fanInFanOut === true, m.out, m.in, o, x);
              const mine = w1[k] + s * np[o * m.in + x];
              const want = w0[k] + s * gp[o * m.in + x] + mean[o * m.in + x];
              err = Math.max(err, Math.abs(mine - want));
            }
          assert.ok(maxAbs(mean) > 1e-4, `round ${round} ${m.module}: the round moved the model`);
          assert.ok(err <= 1e-5 * maxAbs(mean) + 5e-8, `round ${round} ${m.module}: max error ${err} vs update ${maxAbs(mean)}`);
        }
        assert.equal(record.privacy!.epsilon, null, 'no noise: no ε bound');
        before = snapshot;
      }
      for (const o of outcomes) for (const m of LAYOUT) assert.deepEqual(o.base!.modules.get(m.module)!.data, before.base.get(m.module)!.data, `client base of ${m.module}`);
    });

  test("σ > 0: ε per round is the accountant's for that many releases and grows; clients hold the coordinator's base; no loss goes to clients", async () => {
    const clip = 0.05;
    const noiseMultiplier = 1.1;
    const { checks, closed, outcomes } = await federate({ clip, noiseMultiplier });
    let previous = 0;
    for (const [r, { record }] of checks.entries()) {
      const p = record.privacy!;
      const want = gaussianPrivacySpent({ samplingRate: 1, noiseMultiplier, rounds: r + 1, delta: DEFAULT_DP_DELTA });
      assert.equal(p.released, true);
      assert.equal(p.releases, r + 1);
      assert.equal(p.samplingRate, 1);
      assert.equal(p.denominator, 3);
      assert.ok(Math.abs(p.noiseStd - (noiseMultiplier * clip) / 3) < 1e-15);
      assert.ok(Math.abs(p.epsilon! - want.epsilon) <= 1e-12 * want.epsilon, `round ${r + 1}: ε ${p.epsilon} vs ${want.epsilon}`);
      assert.ok(p.epsilon! > previous);
      previous = p.epsilon!;
      assert.ok(record.modules.every((m) => m.deviation === null && m.residualForm === 'dense'));
    }
    assert.equal(closed.length, 3);
    for (const c of closed) {
      assert.equal(c.loss, undefined, "the participants' losses are not released under DP");
      assert.deepEqual(c.modules, []);
    }
    const last = checks[2].snapshot;
    for (const o of outcomes) {
      assert.equal(o.baseRevision, 3);
      for (const m of LAYOUT) assert.deepEqual(o.base!.modules.get(m.module)!.data, last.base.get(m.module)!.data, `client base of ${m.module}`);
    }
  });
});

describe('client-level DP settings', () => {
  const dir = '/nonexistent/run';
  test('refused with examples weighting, a truncated residual, or bad values, naming the setting', () => {
    const privacy = { clip: 1, noiseMultiplier: 1 };
    assert.throws(() => resolvePlan(coordinatorConfig(dir, { privacy, weighting: 'examples' })), /client-level DP needs uniform weighting, got 'examples'/);
    assert.throws(() => resolvePlan(coordinatorConfig(dir, { privacy, residualRank: 2 })), /client-level DP cannot be combined with residualRank/);
    assert.throws(() => resolvePlan(coordinatorConfig(dir, { privacy: { clip: 0, noiseMultiplier: 1 } })), /privacy\.clip must be a finite number > 0, got 0/);
    assert.throws(() => resolvePlan(coordinatorConfig(dir, { privacy: { clip: 1, noiseMultiplier: -2 } })), /privacy\.noiseMultiplier must be a finite number ≥ 0, got -2/);
    assert.throws(() => resolvePlan(coordinatorConfig(dir, { privacy: { clip: 1, noiseMultiplier: 1, delta: 1 } })), /privacy\.delta must be in \(0, 1\), got 1/);
    const plan = resolvePlan(coordinatorConfig(dir, { privacy }));
    assert.deepEqual(plan.privacy, { clip: 1, noiseMultiplier: 1, delta: DEFAULT_DP_DELTA });
    assert.equal(plan.incrementalAggregation, 'off');
  });

  test('a resumed ledger continues from the rounds its history released', () => {
    const plan = resolvePlan(coordinatorConfig(dir, { privacy: { clip: 1, noiseMultiplier: 2, delta: 1e-6 } }));
    const released = { privacy: { released: true } } as Pick<RoundRecord, 'privacy'>;
    const idle = { privacy: { released: false } } as Pick<RoundRecord, 'privacy'>;
    const ledger = new PrivacyLedger(plan, plan.privacy!, [released, idle, released, {}]);
    ledger.begin(4);
    const f = ledger.figures();
    assert.equal(f.releases, 2);
    assert.equal(f.released, false);
    assert.equal(f.epsilon, gaussianPrivacySpent({ samplingRate: 1, noiseMultiplier: 2, rounds: 2, delta: 1e-6 }).epsilon);
  });
});
