import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createOrtProductBackend, factoredUpdateModel } from '../../../src/runtime/kernels/factoredUpdate.js';
import { addScaledProductSync } from '../../../src/core/product.js';
import type { Layout } from '../../../src/core/lora.js';
import { productFixture } from '../../helpers/productFixture.js';
import type { Matrix } from '../../../src/core/tensor.js';
import { createRng } from '../../../src/core/random.js';
import { createFedEx } from '../../../src/core/strategies/fedex.js';
import { specScaling } from '../../../src/core/lora.js';
import { maxAbs, maxAbsDiff, randomBase, randomClients, refEffectiveWeight, refIdealWeight, refMatmul, refTranspose, spec, factored } from '../../core/reference.js';

// Tolerance: both backends round the float32 update once per entry (plus the pre-scaled P for
// onnxruntime), so they agree with the float64 reference to ≤ 1e-6·max|s·P·Q| + 1e-7·max|W|.
function tolerance(update: Float64Array, w: Matrix): number {
  return 1e-6 * maxAbs(update) + 1e-7 * maxAbs(w.data);
}

/** Float64 reference: s·P·Q, transposed explicitly for conv1d. */
function referenceUpdate(layout: Layout, p: Matrix, q: Matrix, scale: number): Float64Array {
  const pq = refMatmul(p, q);
  const laid = layout === 'linear' ? pq : refTranspose(pq, p.shape[0], q.shape[1]);
  return laid.map((v) => scale * v);
}

describe('onnxruntime factored update (Gemm, in place)', () => {
  const backends = [createOrtProductBackend({ intraOpThreads: 1 }), createOrtProductBackend({ intraOpThreads: 2, rowBlock: 5 })];
  after(async () => {
    for (const b of backends) await b.dispose();
  });

  for (const layout of ['linear', 'conv1d'] as const) {
    for (const [out, inF, inner] of [[13, 7, 6], [6, 17, 4], [16, 16, 9], [1, 3, 2]] as const) {
      test(`${layout} out=${out} in=${inF} inner=${inner} matches TypeScript and float64 (whole and in row blocks of 5)`, async () => {
        const { p, q, w } = productFixture(layout, out, inF, inner, out * 31 + inF + (layout === 'linear' ? 0 : 1000));
        const scale = 0.37;
        const expected = referenceUpdate(layout, p, q, scale).map((u, i) => u + w.data[i]);
        const ts = { shape: w.shape, data: Float32Array.from(w.data) };
        addScaledProductSync(ts, layout, p, q, scale);

        for (const backend of backends) {
          const target = { shape: w.shape, data: Float32Array.from(w.data) };
          await backend.addScaledProduct(target, layout, p, q, scale);

          const tol = tolerance(referenceUpdate(layout, p, q, scale), w);
          assert.ok(maxAbsDiff(target.data, expected) <= tol, `vs float64: ${maxAbsDiff(target.data, expected)} > ${tol}`);
          assert.ok(maxAbsDiff(target.data, ts.data) <= tol, `vs TypeScript: ${maxAbsDiff(target.data, ts.data)}`);
        }
      });
    }
  }

  test('a square conv1d update is transposed (non-symmetric data; linear and conv1d differ)', async () => {
    const { p, q, w } = productFixture('conv1d', 8, 8, 3, 77);
    const asConv = { shape: w.shape, data: Float32Array.from(w.data) };
    const asLinear = { shape: w.shape, data: Float32Array.from(w.data) };
    await backends[0].addScaledProduct(asConv, 'conv1d', p, q, 1);
    await backends[0].addScaledProduct(asLinear, 'linear', p, q, 1);
    const ref = referenceUpdate('conv1d', p, q, 1).map((u, i) => u + w.data[i]);

    assert.ok(maxAbsDiff(asConv.data, ref) <= 1e-5);
    assert.ok(maxAbsDiff(asConv.data, asLinear.data) > 0.1, 'the data must be able to reveal a wrong transpose');
  });

  test('a bigger target in row blocks (7 rows by blockBytes, 5 by rowBlock) equals one call; calls accumulate', async () => {
    const { p, q, w } = productFixture('linear', 300, 257, 48, 5);
    const whole = { shape: w.shape, data: Float32Array.from(w.data) };
    const blocked = { shape: w.shape, data: Float32Array.from(w.data) };
    await backends[0].addScaledProduct(whole, 'linear', p, q, 0.5);
    const byBytes = createOrtProductBackend({ blockBytes: 257 * 4 * 7 });
    await byBytes.addScaledProduct(blocked, 'linear', p, q, 0.25);
    await backends[1].addScaledProduct(blocked, 'linear', p, q, 0.25);
    await byBytes.dispose();
    const expected = referenceUpdate('linear', p, q, 0.5).map((u, i) => u + w.data[i]);

    const tol = tolerance(referenceUpdate('linear', p, q, 0.5), w) * 2;
    assert.ok(maxAbsDiff(whole.data, expected) <= tol, `whole: ${maxAbsDiff(whole.data, expected)}`);
    assert.ok(maxAbsDiff(blocked.data, expected) <= tol, `blocked: ${maxAbsDiff(blocked.data, expected)}`);
  });

  test('a target that is a view into a larger buffer is updated in place without touching its neighbours', async () => {
    const { p, q, w } = productFixture('conv1d', 5, 9, 2, 9);
    const backing = new Float32Array(w.data.length + 8).fill(42);
    backing.set(w.data, 4);
    const target = { shape: w.shape, data: backing.subarray(4, 4 + w.data.length) };
    await backends[1].addScaledProduct(target, 'conv1d', p, q, 2);
    const expected = referenceUpdate('conv1d', p, q, 2).map((u, i) => u + w.data[i]);

    assert.ok(maxAbsDiff(target.data, expected) <= 1e-5);
    assert.deepEqual([...backing.subarray(0, 4), ...backing.subarray(4 + w.data.length)], Array(8).fill(42));
  });

  test('a FedEx round applied through onnxruntime is exact (both layouts, 3 weighted clients)', async () => {
    for (const layout of ['linear', 'conv1d'] as const) {
      const s = spec('transformer.h.5.attn.c_attn', 24, 9, 4, layout, 8);
      const rng = createRng(layout === 'linear' ? 1 : 2);
      const clients = randomClients(s, 3, rng);
      const w0 = randomBase(s, rng);
      const agg = createFedEx({ weighting: 'explicit' }).aggregate(1, { spec: s, factors: null }, clients.map((factors, client) => ({ client, factors, weight: [3, 1, 2][client] })), []);
      assert.ok(agg !== null && agg.baseUpdate !== null);
      const w0New = { shape: w0.shape, data: Float32Array.from(w0.data) };
      const u = factored(agg.baseUpdate);
      await backends[1].addScaledProduct(w0New, layout, u.p, u.q, u.scale);
      const ideal = refIdealWeight(w0, clients, agg.metrics.weights, specScaling(s), layout);
      const effective = refEffectiveWeight(w0New, agg.global.factors!, specScaling(s), layout);
      const update = maxAbs(ideal.map((v, i) => v - w0.data[i]));

      // Same tolerance as the core exactness property: 1e-5·max|update| + 1e-6·max|W0|.
      assert.ok(maxAbsDiff(effective, ideal) <= 1e-5 * update + 1e-6 * maxAbs(w0.data), `${layout}: ${maxAbsDiff(effective, ideal)}`);
    }
  });

  test('shape mismatches are refused with the shapes named', async () => {
    const { p, q } = productFixture('linear', 4, 6, 2, 1);
    const target = { shape: [4, 6] as [number, number], data: new Float32Array(24) };
    await assert.rejects(backends[0].addScaledProduct(target, 'conv1d', p, q, 1), /target is \[4, 6\] but conv1d layout .* needs \[6, 4\]/);
  });

  test('the cached graphs have one Gemm and symbolic dims', () => {
    for (const layout of ['linear', 'conv1d'] as const) {
      const m = factoredUpdateModel(layout);
      assert.equal(m.graph.nodes.length, 1);
      assert.equal(m.graph.nodes[0].opType, 'Gemm');
      assert.ok(m.graph.inputs.every((i) => i.shape !== undefined && i.shape.every((d) => typeof d === 'string')));
    }
  });
});
