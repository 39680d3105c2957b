// A client below the global rank (client/rankView.ts): its settings keep the global scaling, and at the
// start of a round its model — the truncated global adapter on its adjusted base — equals the global
// model W0 + s·B_g A_g, checked in float64 for both layouts and a square and a non-square module.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loraScaling } from '../../../src/core/lora.js';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { createRng, randomMatrix } from '../../../src/core/random.js';
import { settingsAtRank, truncatedAdapter, truncatedBase } from '../../../src/federation/client/rankView.js';
import type { FederationSettings } from '../../../src/federation/client/trainer.js';
import { maxAbs, maxAbsDiff, refDelta } from '../../core/reference.js';

const LAYOUT = [
  { module: 'transformer.h.0.attn.c_attn', in: 12, out: 36, rank: 8, fanInFanOut: true },
  { module: 'model.layers.0.self_attn.q_proj', in: 10, out: 10, rank: 8, fanInFanOut: false },
];

function settings(rsLora = false): FederationSettings {
  return {
    method: 'fedex',
    rounds: 2,
    localSteps: 1,
    batchSize: 1,
    rank: 8,
    alpha: 16,
    rsLora,
    targetModules: ['c_attn', 'q_proj'],
    lr: 0.01,
    seed: 0,
    weighting: 'uniform',
    resetOptimizer: true,
    uplinkDtype: 'float32',
    baseModelHash: '0'.repeat(64),
    layout: LAYOUT,
  };
}

describe('a client below the global rank', () => {
  test('trains at its rank with the global scaling (alpha scaled; √ with rsLoRA)', () => {
    const mine = settingsAtRank(settings(), 2);
    assert.equal(mine.rank, 2);
    assert.deepEqual(mine.layout.map((m) => m.rank), [2, 2]);
    assert.equal(loraScaling(mine.alpha, 2, false), loraScaling(16, 8, false));
    const rs = settingsAtRank(settings(true), 2);
    assert.ok(Math.abs(loraScaling(rs.alpha, 2, true) - loraScaling(16, 8, true)) < 1e-15);
    const config = settings();
    assert.equal(settingsAtRank(config, 8), config, 'the global rank: the settings themselves');
    assert.equal(settingsAtRank(config, undefined), config);
    assert.throws(() => settingsAtRank(settings(), 9), /client rank 9 must be an integer in 1\.\.8/);
  });

  test('starts from a model equal to the global one: truncated adapter + adjusted base', async () => {
    const rng = createRng(12);
    const config = settings();
    const global = new Map(LAYOUT.map((m) => [m.module, { a: randomMatrix(8, m.in, rng, 0.3), b: randomMatrix(m.out, 8, rng, 0.2) }]));
    const modules = new Map(LAYOUT.map((m) => [m.module, randomMatrix(m.fanInFanOut ? m.in : m.out, m.fanInFanOut ? m.out : m.in, rng, 1)]));
    const base = { revision: 0, fromRevision: null, updatedModules: [], modules };
    const rank = 3;
    const mine = settingsAtRank(config, rank);
    const start = truncatedAdapter(global, mine.layout);
    const adjusted = await truncatedBase(base, global, config, rank, createTypeScriptBackend());
    assert.deepEqual(adjusted.adjustedModules, LAYOUT.map((m) => m.module));
    const s = loraScaling(16, 8, false);
    for (const m of LAYOUT) {
      const layout = m.fanInFanOut ? 'conv1d' : 'linear';
      const w0 = modules.get(m.module)!;
      const globalModel = Float64Array.from(w0.data);
      refDelta(global.get(m.module)!, layout).forEach((v, x) => (globalModel[x] += s * v));
      const clientModel = Float64Array.from(adjusted.modules.get(m.module)!.data);
      refDelta(start.get(m.module)!, layout).forEach((v, x) => (clientModel[x] += loraScaling(mine.alpha, rank, false) * v));
      const size = maxAbs(globalModel.map((v, x) => v - w0.data[x]));
      assert.ok(maxAbsDiff(clientModel, globalModel) <= 1e-6 * maxAbs(w0.data) + 1e-6 * size, `${m.module}: ${maxAbsDiff(clientModel, globalModel)}`);
      // Without the adjusted base the client would start far from the global model.
      const plain = Float64Array.from(w0.data);
      refDelta(start.get(m.module)!, layout).forEach((v, x) => (plain[x] += s * v));
      assert.ok(maxAbsDiff(plain, globalModel) > 1e-2);
      assert.equal(base.modules.get(m.module), w0, 'the revision base is left as it is');
    }
  });

  test('a global adapter with B = 0 (round 1, FLoRA) needs no adjusted base', async () => {
    const rng = createRng(2);
    const global = new Map(LAYOUT.map((m) => [m.module, { a: randomMatrix(8, m.in, rng), b: { shape: [m.out, 8] as [number, number], data: new Float32Array(m.out * 8) } }]));
    const base = { revision: 0, fromRevision: null, updatedModules: [], modules: new Map(LAYOUT.map((m) => [m.module, randomMatrix(m.in, m.out, rng)])) };
    assert.equal(await truncatedBase(base, global, settings(), 4, createTypeScriptBackend()), base);
  });
});
