// Heterogeneous client ranks (core/clientRanks.ts) with FedEx-LoRA: clients of ranks r_i ≤ r_g start
// each round from the global adapter truncated to r_i, with what the truncation drops folded into their
// own base W0_i = W0 + s·(B_g A_g − B_g[:, :r_i] A_g[:r_i, :]); the aggregate must then satisfy
// W0' + s·B̄Ā = Σ w_i (W0_i + s·B_i A_i). Checked against a float64 reference over three rounds (so
// the truncation of a trained global adapter matters), both layouts, square and non-square modules,
// uniform and example weights, through `aggregate` and the streaming accumulator.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyBaseChange } from '../../../src/core/baseChange.js';
import { padFactors, truncateFactors, truncationLoss, weightedTruncation } from '../../../src/core/clientRanks.js';
import { specScaling, type Layout, type LoraFactors } from '../../../src/core/lora.js';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { createRng, fillGaussian, kaimingUniform, randomMatrix } from '../../../src/core/random.js';
import { createStrategy } from '../../../src/core/strategies/registry.js';
import type { ClientModuleResult, ModuleAggregate } from '../../../src/core/strategies/types.js';
import type { Matrix } from '../../../src/core/tensor.js';
import { maxAbs, maxAbsDiff, refDelta, spec } from '../reference.js';

const REL_TOL = 1e-5;
const BASE_TOL = 1e-6;

/** Float64 dense B·A laid out like W0, from explicit slices (independent of clientRanks.ts). */
function deltaOfComponents(g: LoraFactors, from: number, to: number, layout: Layout): Float64Array {
  const [r, inF] = g.a.shape;
  const out = g.b.shape[0];
  const k = to - from;
  const a = { shape: [k, inF] as [number, number], data: new Float32Array(k * inF) };
  const b = { shape: [out, k] as [number, number], data: new Float32Array(out * k) };
  for (let j = 0; j < k; j++) for (let x = 0; x < inF; x++) a.data[j * inF + x] = g.a.data[(from + j) * inF + x];
  for (let o = 0; o < out; o++) for (let j = 0; j < k; j++) b.data[o * k + j] = g.b.data[o * r + from + j];
  return refDelta({ a, b }, layout);
}

/** Local training stand-in: the start plus Gaussian noise on A and B (each client differently). */
function trained(start: LoraFactors, seed: number): LoraFactors {
  const rng = createRng(seed);
  const a = Float32Array.from(start.a.data);
  const b = Float32Array.from(start.b.data);
  const da = fillGaussian(new Float32Array(a.length), rng, 0.1);
  const db = fillGaussian(new Float32Array(b.length), rng, 0.1);
  for (let i = 0; i < a.length; i++) a[i] += da[i];
  for (let i = 0; i < b.length; i++) b[i] += db[i];
  return { a: { shape: start.a.shape, data: a }, b: { shape: start.b.shape, data: b } };
}

async function withChange(w: Matrix<Float32Array>, agg: ModuleAggregate, layout: Layout): Promise<Matrix<Float32Array>> {
  const next = { shape: w.shape, data: Float32Array.from(w.data) };
  if (agg.baseUpdate !== null) await applyBaseChange(next, layout, agg.baseUpdate, createTypeScriptBackend());
  return next;
}

describe('FedEx-LoRA with client ranks 1, 2, 4 below the global rank 4: exact every round', () => {
  const shapes: [string, number, number][] = [['square', 10, 10], ['wide', 6, 15], ['tall', 17, 8]];
  let seed = 900;
  for (const [shapeName, out, inF] of shapes) {
    for (const layout of ['linear', 'conv1d'] as const) {
      for (const weighting of ['uniform', 'examples'] as const) {
        for (const summed of [false, true]) {
          const caseSeed = seed++;
          test(`${shapeName} ${out}×${inF} ${layout} ${weighting}${summed ? ' (accumulated)' : ''}`, async () => {
            const s = spec('model.layers.2.self_attn.o_proj', out, inF, 4, layout, 8);
            const ranks = [1, 2, 4];
            const examples = [5, 20, 11];
            const scale = specScaling(s);
            const rng = createRng(caseSeed);
            let w0 = randomMatrix(layout === 'linear' ? out : inF, layout === 'linear' ? inF : out, rng, 1);
            let global: LoraFactors = { a: kaimingUniform(4, inF, rng), b: { shape: [out, 4], data: new Float32Array(out * 4) } };
            const strategy = createStrategy('fedex', { weighting });
            for (let round = 1; round <= 3; round++) {
              // Each client: the global truncated to its rank, and its own base W0_i (float64 reference).
              const clientBases = ranks.map((r) => {
                const dropped = deltaOfComponents(global, r, 4, layout);
                return Float64Array.from(w0.data, (v, x) => v + scale * dropped[x]);
              });
              const clients = ranks.map((r, i) => trained(truncateFactors(global, r), caseSeed * 10 + round * 3 + i));
              const results: ClientModuleResult[] = clients.map((factors, client) => ({ client, factors, numExamples: examples[client] }));
              let agg: ModuleAggregate | null;
              if (summed) {
                const acc = strategy.accumulator!(s, createTypeScriptBackend());
                for (const [i, c] of clients.entries()) await acc.add(c, weighting === 'uniform' ? 1 : examples[i]);
                agg = await acc.finish(round, { spec: s, factors: global }, results, []);
              } else {
                agg = strategy.aggregate(round, { spec: s, factors: global }, results, []);
              }
              assert.ok(agg !== null);
              const w = agg.metrics.weights;
              const ideal = new Float64Array(w0.data.length);
              clients.forEach((c, i) => {
                const d = refDelta(c, layout);
                for (let x = 0; x < ideal.length; x++) ideal[x] += w[i] * (clientBases[i][x] + scale * d[x]);
              });
              const w0New = await withChange(w0, agg, layout);
              const g = agg.global.factors!;
              const dg = refDelta(g, layout);
              const effective = Float64Array.from(w0New.data, (v, x) => v + scale * dg[x]);
              const update = maxAbs(ideal.map((v, x) => v - w0.data[x]));
              const err = maxAbsDiff(effective, ideal);
              assert.ok(update > 1e-3, `round ${round}: a visible update (${update})`);
              assert.ok(err <= REL_TOL * update + BASE_TOL * maxAbs(w0.data), `round ${round}: max-abs error ${err} vs update ${update}`);
              assert.deepEqual(g.a.shape, [4, inF], 'the global adapter keeps the global rank');
              if (round > 1) {
                // Leaving out the truncation losses would miss them by far more than round-off.
                const dropped = new Float64Array(ideal.length);
                ranks.forEach((r, i) => deltaOfComponents(global, r, 4, layout).forEach((v, x) => (dropped[x] += w[i] * scale * v)));
                assert.ok(maxAbs(dropped) > 100 * (err + 1e-12), `round ${round}: the truncation term (${maxAbs(dropped)}) is material`);
              }
              w0 = w0New;
              global = g;
            }
          });
        }
      }
    }
  }

  test('equal ranks go through the unchanged FedEx path (bit-identical to the homogeneous aggregate)', () => {
    const s = spec('m', 8, 6, 3, 'linear');
    const rng = createRng(4);
    const clients = [0, 1].map(() => ({ a: randomMatrix(3, 6, rng, 0.3), b: randomMatrix(8, 3, rng, 0.2) }));
    const results = clients.map((factors, client) => ({ client, factors }));
    const agg = createStrategy('fedex').aggregate(1, { spec: s, factors: null }, results, [])!;
    assert.equal(agg.plainAverage, undefined);
    assert.equal(agg.baseUpdate?.form === 'factored' ? agg.baseUpdate.p.shape[1] : -1, 6);
  });

  test('methods that cannot fold a truncated start refuse a lower rank, naming the client and module', () => {
    const s = spec('transformer.h.1.attn.c_proj', 8, 8, 4, 'conv1d');
    const rng = createRng(5);
    const low = { a: randomMatrix(2, 8, rng), b: randomMatrix(8, 2, rng) };
    const full = { a: randomMatrix(4, 8, rng), b: randomMatrix(8, 4, rng) };
    const results = [{ client: 0, factors: full }, { client: 1, clientId: 'bob', factors: low }];
    for (const name of ['fedit', 'ffa'] as const) {
      assert.throws(() => createStrategy(name).aggregate(1, { spec: s, factors: full }, results, []),
        new RegExp(`${name}: client 1 \\('bob'\\): module 'transformer\\.h\\.1\\.attn\\.c_proj': lora_A has rank 2, the global rank is 4; lower client ranks need .*fedex or flora`));
    }
    const mismatched = { a: randomMatrix(2, 8, rng), b: randomMatrix(8, 3, rng) };
    assert.throws(() => createStrategy('fedex').aggregate(1, { spec: s, factors: full }, [{ client: 0, factors: mismatched }], []), /client 0: module 'transformer\.h\.1\.attn\.c_proj': lora_B has shape \[8, 3\], expected \[8, 2\]/);
  });
});

describe('clientRanks helpers against explicit slices', () => {
  const rng = createRng(8);
  const g = { a: randomMatrix(4, 5, rng), b: randomMatrix(3, 4, rng) };

  test('truncateFactors keeps the first r components; padFactors undoes it with zeros', () => {
    const t = truncateFactors(g, 2);
    assert.deepEqual(t.a.data, g.a.data.slice(0, 10));
    assert.deepEqual([...t.b.data], [g.b.data[0], g.b.data[1], g.b.data[4], g.b.data[5], g.b.data[8], g.b.data[9]]);
    const p = padFactors(t, 4);
    assert.deepEqual([...p.b.data.slice(0, 4)], [g.b.data[0], g.b.data[1], 0, 0]);
    assert.ok(p.a.data.slice(10).every((v) => v === 0));
    assert.throws(() => truncateFactors(g, 5), /rank must be an integer in 1\.\.4, got 5/);
  });

  test('truncationLoss and weightedTruncation are the dropped products, weighted', () => {
    const loss = truncationLoss(g, 1)!;
    const viaLoss = refDelta({ a: loss.q, b: loss.p }, 'linear');
    assert.ok(maxAbsDiff(viaLoss, deltaOfComponents(g, 1, 4, 'linear')) < 1e-12);
    assert.equal(truncationLoss(g, 4), null);
    const w = [0.2, 0.3, 0.5];
    const sum = weightedTruncation(g, [1, 3, 4], w)!;
    const expected = new Float64Array(15);
    deltaOfComponents(g, 1, 4, 'linear').forEach((v, x) => (expected[x] += 0.2 * v));
    deltaOfComponents(g, 3, 4, 'linear').forEach((v, x) => (expected[x] += 0.3 * v));
    assert.ok(maxAbsDiff(refDelta({ a: sum.q, b: sum.p }, 'linear'), expected) < 1e-6 * maxAbs(expected));
    assert.equal(sum.p.shape[1], 3, 'components 1..3 carry weight');
    assert.equal(weightedTruncation(g, [4, 4], [0.5, 0.5]), null);
    assert.equal(weightedTruncation(null, [1], [1]), null);
  });
});
