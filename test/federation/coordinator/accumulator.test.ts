// Aggregation during the uploads: the dense FedEx residual from the accumulated sums equals the
// factored path's to float32 round-off of the update, falls back when the sums do not hold exactly
// the participants, and keeps a live federation exact (float64 reference) with clients' bases
// bit-identical to the coordinator's.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loraScaling, type LoraFactors } from '../../../src/core/lora.js';
import { createRng, randomMatrix } from '../../../src/core/random.js';
import { createStrategy } from '../../../src/core/strategies/registry.js';
import type { Matrix } from '../../../src/core/tensor.js';
import { createSyntheticTrainer } from '../../../src/federation/client/syntheticTrainer.js';
import { accumulatedModules, UploadAccumulator } from '../../../src/federation/coordinator/accumulator.js';
import { aggregateRound, type AcceptedUpdate } from '../../../src/federation/coordinator/aggregate.js';
import { moduleSpecs, resolvePlan } from '../../../src/federation/coordinator/config.js';
import { Coordinator } from '../../../src/federation/coordinator/coordinator.js';
import type { RoundRecord } from '../../../src/federation/coordinator/events.js';
import { BASE, LAYOUT, backend, coordinatorConfig, effective, recording, startClients, tempRunDir, type Seen } from './fixtures.js';

const DENSE = LAYOUT[2];

function updates(k: number, examples: (i: number) => number): AcceptedUpdate[] {
  const rng = createRng(5);
  return Array.from({ length: k }, (_, i) => ({
    clientId: `c${i}`,
    numExamples: examples(i),
    trainLoss: 1,
    adapter: new Map(LAYOUT.map((m) => [m.module, { a: randomMatrix(m.rank, m.in, rng, 0.4), b: randomMatrix(m.out, m.rank, rng, 0.4) } as LoraFactors])),
  }));
}

async function aggregate(weighting: 'uniform' | 'examples', ups: AcceptedUpdate[], accumulate: 'all' | 'some' | 'none'): Promise<{ base: Map<string, Matrix<Float32Array>>; result: NonNullable<Awaited<ReturnType<typeof aggregateRound>>> }> {
  const plan = resolvePlan(coordinatorConfig('unused', { weighting, incrementalAggregation: 'always' }));
  const base = new Map([...(await BASE.load(LAYOUT))].map(([k, m]) => [k, { shape: m.shape, data: Float32Array.from(m.data) } as Matrix<Float32Array>]));
  const global = new Map(LAYOUT.map((m) => [m.module, { a: { shape: [m.rank, m.in], data: new Float32Array(m.rank * m.in) }, b: { shape: [m.out, m.rank], data: new Float32Array(m.out * m.rank) } } as LoraFactors]));
  let accumulator: UploadAccumulator | undefined;
  const strategy = createStrategy('fedex', { weighting, deviationMetrics: false });
  if (accumulate !== 'none') {
    const names = new Set(accumulatedModules(plan.layout, strategy, false, ups.length, 'always').map((m) => m.module));
    accumulator = new UploadAccumulator(moduleSpecs(plan).filter((x) => names.has(x.name)), strategy, weighting, backend);
    for (const u of accumulate === 'all' ? ups : ups.slice(1)) accumulator.add(u.clientId, u.adapter, u.numExamples);
  }
  const result = await aggregateRound(plan, strategy, 1, global, base, ups, [], backend, accumulator !== undefined ? { accumulator } : {});
  assert.ok(result !== null);
  return { base, result };
}

describe('aggregation from accumulated uploads', () => {
  test('only modules whose residual travels dense are accumulated, and only where the strategy offers sums that serve the base update or the metrics', () => {
    const fedex = createStrategy('fedex');
    const fedit = createStrategy('fedit');
    // 3 clients: only down_proj goes dense ((12 + 40)·3·4 ≥ 12·40); 4 clients: c_proj too ((16 + 16)·4·2 ≥ 16·16).
    assert.deepEqual(accumulatedModules(LAYOUT, fedex, false, 3, 'always').map((m) => m.module), [DENSE.module]);
    assert.deepEqual(accumulatedModules(LAYOUT, fedex, false, 4, 'always').map((m) => m.module), [LAYOUT[1].module, DENSE.module]);
    assert.deepEqual(accumulatedModules(LAYOUT, fedit, true, 3, 'always').map((m) => m.module), [DENSE.module]);
    assert.deepEqual(accumulatedModules(LAYOUT, fedit, false, 4, 'always'), [], 'FedIT without metrics: the sums would serve nothing');
    assert.deepEqual(accumulatedModules(LAYOUT, createStrategy('ffa'), true, 4, 'always'), [], 'FFA-LoRA offers no accumulator');
    assert.deepEqual(accumulatedModules(LAYOUT, createStrategy('fedex', { aggregation: { name: 'median' } }), true, 4, 'always'), [], 'a robust rule is not linear in the uploads');
    assert.deepEqual(accumulatedModules(LAYOUT, createStrategy('fedex', { residualRank: 2 }), false, 4, 'always'), [], 'a truncated residual needs the factors');
    assert.deepEqual(accumulatedModules(LAYOUT, fedex, false, 4, 'auto'), [], 'auto: tiny modules keep the deterministic path');
    assert.deepEqual(accumulatedModules(LAYOUT, fedex, false, 4, 'off'), []);
  });

  for (const weighting of ['uniform', 'examples'] as const) {
    test(`${weighting} weights: the dense residual from the sums equals s·P·Q to float32 round-off of the update`, async () => {
      const ups = updates(5, (i) => 10 * (i + 1));
      const plain = await aggregate(weighting, ups, 'none');
      const summed = await aggregate(weighting, ups, 'all');
      for (const m of LAYOUT) {
        assert.deepEqual(summed.result.global.get(m.module)!.a.data, plain.result.global.get(m.module)!.a.data, `${m.module}: Ā identical`);
        assert.deepEqual(summed.result.global.get(m.module)!.b.data, plain.result.global.get(m.module)!.b.data, `${m.module}: B̄ identical`);
      }
      // 5 clients: c_proj and down_proj travel dense (from the sums), c_attn factored (untouched by them).
      for (const m of LAYOUT.slice(1)) {
        const a = plain.result.stepModules.find((x) => x.module === m.module)!;
        const b = summed.result.stepModules.find((x) => x.module === m.module)!;
        assert.ok(a.form === 'dense' && b.form === 'dense', m.module);
        // Size of the ideal update s·Σ w_i B_i A_i, float64.
        const w = plain.result.weights;
        const s = loraScaling(4, m.rank, false);
        let size = 0;
        for (let o = 0; o < m.out; o++)
          for (let x = 0; x < m.in; x++) {
            let v = 0;
            ups.forEach((u, i) => {
              const f = u.adapter.get(m.module)!;
              for (let j = 0; j < m.rank; j++) v += w[i] * f.b.data[o * m.rank + j] * f.a.data[j * m.in + x];
            });
            size = Math.max(size, Math.abs(s * v));
          }
        let err = 0;
        for (let i = 0; i < a.d.data.length; i++) err = Math.max(err, Math.abs(a.d.data[i] - b.d.data[i]));
        assert.ok(size > 0.1 && err <= 2e-6 * size, `${m.module}: max difference ${err} for an update of size ${size}`);
      }
      assert.deepEqual(summed.base.get(LAYOUT[0].module)!.data, plain.base.get(LAYOUT[0].module)!.data);
    });
  }

  test('sums that miss a participant are not used (the factored path gives the same bits as without them)', async () => {
    const ups = updates(4, () => 1);
    const plain = await aggregate('uniform', ups, 'none');
    const partial = await aggregate('uniform', ups, 'some');
    for (const m of LAYOUT) assert.deepEqual(partial.base.get(m.module)!.data, plain.base.get(m.module)!.data, m.module);
  });
});

test("a live FedEx federation aggregating during the uploads stays exact and clients hold the coordinator's bits", { timeout: 20_000 }, async () => {
  const { dir, cleanup } = await tempRunDir();
  const coordinator = await Coordinator.create(coordinatorConfig(dir, { rounds: 2, minClients: 4, incrementalAggregation: 'always' }));
  const snaps = [coordinator.snapshot()];
  const records: RoundRecord[] = [];
  coordinator.on('round_closed', (r) => {
    records.push(r);
    snaps.push(coordinator.snapshot());
  });
  try {
    const url = await coordinator.start();
    const seen = [0, 1, 2, 3].map(() => new Map<number, Seen>());
    const { clients, runs } = startClients(url, 4, (i) => ({ trainer: recording(createSyntheticTrainer({ seed: 500 + i, noise: 0.05 }), seen[i]) }));
    await Promise.all([coordinator.run(), ...runs]);
    for (const [r, record] of records.entries()) {
      assert.equal(record.modules.find((m) => m.module === DENSE.module)!.residualForm, 'dense');
      const after = snaps[r + 1];
      for (const m of LAYOUT) {
        const s = loraScaling(4, m.rank, false);
        const ref = new Float64Array(after.base.get(m.module)!.data.length);
        for (const id of record.participants) {
          const got = seen[Number(id.slice(1))].get(r + 1)!;
          const e = effective(got.base.get(m.module)!, got.result.adapter.get(m.module)!, s, m.fanInFanOut === true);
          for (let j = 0; j < e.length; j++) ref[j] += e[j] / record.participants.length;
        }
        const mine = effective(after.base.get(m.module)!, after.global.get(m.module)!, s, m.fanInFanOut === true);
        const w0 = snaps[r].base.get(m.module)!.data;
        let err = 0;
        let size = 0;
        for (let j = 0; j < ref.length; j++) {
          err = Math.max(err, Math.abs(mine[j] - ref[j]));
          size = Math.max(size, Math.abs(ref[j] - w0[j]));
        }
        assert.ok(size > 1e-3 && err <= 1e-5 * size + 1e-8, `round ${r + 1} ${m.module}: error ${err}, update ${size}`);
      }
    }
    const final = snaps[snaps.length - 1];
    for (const c of clients) for (const m of LAYOUT) assert.deepEqual(c.base.modules.get(m.module)!.data, final.base.get(m.module)!.data);
  } finally {
    await coordinator.close();
    await cleanup();
  }
});
