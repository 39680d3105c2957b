// FLoRA (stacking, core/strategies/flora.ts): the whole weighted update Σ w_i B_i A_i is folded into
// the base and the next round starts from a fresh adapter (B = 0), so W0' + s·B_g A_g = Σ w_i (W0 + s·B_i A_i),
// checked against a float64 reference for both layouts, square and non-square modules, uniform and
// example weights, equal and mixed client ranks, through `aggregate` and the streaming accumulator.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyBaseChange } from '../../../src/core/baseChange.js';
import { specScaling, type Layout, type LoraFactors, type LoraModuleSpec } from '../../../src/core/lora.js';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { createRng, randomMatrix, type Rng } from '../../../src/core/random.js';
import { createFlora, freshAdapter } from '../../../src/core/strategies/flora.js';
import { createStrategy } from '../../../src/core/strategies/registry.js';
import type { ClientModuleResult, ModuleAggregate } from '../../../src/core/strategies/types.js';
import { maxAbs, maxAbsDiff, randomBase, refEffectiveWeight, refIdealWeight, spec } from '../reference.js';

// Exactness tolerance (docs/math.md §1): float32 round-off of the update plus that of W0' itself.
const REL_TOL = 1e-5;
const BASE_TOL = 1e-6;

/** Clients of the given ranks with non-zero factors, as after local training. */
function clientsAtRanks(s: LoraModuleSpec, ranks: readonly number[], rng: Rng): LoraFactors[] {
  return ranks.map((r) => ({ a: randomMatrix(r, s.inFeatures, rng, 0.3), b: randomMatrix(s.outFeatures, r, rng, 0.2) }));
}

function results(clients: readonly LoraFactors[], examples?: readonly number[]): ClientModuleResult[] {
  return clients.map((factors, client) => ({ client, factors, ...(examples !== undefined ? { numExamples: examples[client] } : {}) }));
}

/** W0 after the aggregate's base update (the reference the update is applied with is the TypeScript backend). */
async function applied(w0: { shape: readonly [number, number]; data: Float32Array }, agg: ModuleAggregate, layout: Layout): Promise<{ shape: [number, number]; data: Float32Array }> {
  const w = { shape: [w0.shape[0], w0.shape[1]] as [number, number], data: Float32Array.from(w0.data) };
  if (agg.baseUpdate !== null) await applyBaseChange(w, layout, agg.baseUpdate, createTypeScriptBackend());
  return w;
}

describe("FLoRA exactness: W0' + s·B_g A_g = Σ w_i (W0 + s·B_i A_i)", () => {
  const shapes: [string, number, number][] = [['square', 12, 12], ['wide', 7, 19], ['tall', 21, 9]];
  const rankSets: [string, number[]][] = [['equal ranks', [4, 4, 4]], ['ranks 1, 2, 4', [1, 2, 4]]];
  let seed = 500;
  for (const [shapeName, out, inF] of shapes) {
    for (const layout of ['linear', 'conv1d'] as const) {
      for (const weighting of ['uniform', 'examples'] as const) {
        for (const [rankName, ranks] of rankSets) {
          const caseSeed = seed++;
          test(`${shapeName} ${out}×${inF} ${layout} ${weighting} ${rankName}`, async () => {
            const s = spec('model.layers.1.self_attn.v_proj', out, inF, 4, layout, 8);
            const rng = createRng(caseSeed);
            const clients = clientsAtRanks(s, ranks, rng);
            const w0 = randomBase(s, rng);
            const examples = weighting === 'examples' ? [3, 10, 25] : undefined;
            const strategy = createFlora({ weighting, seed: 7 });

            const agg = strategy.aggregate(2, { spec: s, factors: freshAdapter(7, 1, s) }, results(clients, examples), []);
            assert.ok(agg !== null);
            const w0New = await applied(w0, agg, layout);
            const scale = specScaling(s);
            const weights = agg.metrics.weights;
            const padded = clients.map((c) => pad(c, 4));
            const ideal = refIdealWeight(w0, padded, weights, scale, layout);
            const effective = refEffectiveWeight(w0New, agg.global.factors!, scale, layout);
            const update = maxAbs(ideal.map((v, i) => v - w0.data[i]));

            assert.ok(update > 1e-3, `the test data has a visible update (${update})`);
            const err = maxAbsDiff(effective, ideal);
            assert.ok(err <= REL_TOL * update + BASE_TOL * maxAbs(w0.data), `max-abs error ${err} vs update ${update}`);
            assert.ok(agg.global.factors!.b.data.every((v) => v === 0), 'the next round starts with B = 0');
            assert.deepEqual(agg.global.factors!.a.data, freshAdapter(7, 2, s).a.data, 'a fresh, reproducible A');
            assert.equal(agg.baseUpdate?.form, 'factored');
            assert.equal(agg.baseUpdate?.form === 'factored' ? agg.baseUpdate.p.shape[1] : 0, ranks.reduce((a, b) => a + b, 0), 'stacked inner size Σ r_i');
            assert.equal(agg.metrics.exact, true);
            if (weighting === 'examples') assert.deepEqual(weights.map((w) => Math.round(w * 38)), [3, 10, 25]);

            // The streaming accumulator folds the same update (dense), to float32 round-off.
            const acc = strategy.accumulator!(s, createTypeScriptBackend());
            for (const [i, c] of clients.entries()) await acc.add(c, examples?.[i] ?? 1);
            const summed = await acc.finish(2, { spec: s, factors: freshAdapter(7, 1, s) }, results(clients, examples), []);
            assert.ok(summed !== null);
            assert.equal(summed.baseUpdate?.form, 'dense');
            assert.deepEqual(summed.global.factors, agg.global.factors);
            const viaSums = refEffectiveWeight(await applied(w0, summed, layout), summed.global.factors!, scale, layout);
            assert.ok(maxAbsDiff(viaSums, ideal) <= REL_TOL * update + BASE_TOL * maxAbs(w0.data), `accumulated: ${maxAbsDiff(viaSums, ideal)} vs update ${update}`);
          });
        }
      }
    }
  }

  test('the deviation reported is that of plain averaging (against the weighted means, not the fresh adapter)', () => {
    const s = spec('transformer.h.0.attn.c_attn', 10, 6, 2, 'conv1d', 4);
    const clients = clientsAtRanks(s, [2, 2, 2], createRng(3));
    const flora = createFlora().aggregate(1, { spec: s, factors: null }, results(clients), [])!;
    const fedit = createStrategy('fedit').aggregate(1, { spec: s, factors: null }, results(clients), [])!;
    assert.ok(flora.metrics.relativeDeviation > 0 && flora.metrics.relativeDeviation < 1);
    assert.equal(flora.metrics.deviationNorm, fedit.metrics.deviationNorm);
    assert.deepEqual(flora.plainAverage, fedit.global.factors);
  });

  test('a non-zero starting B with lower client ranks: the truncation the clients started from is folded too', async () => {
    const s = spec('model.layers.0.mlp.up_proj', 9, 7, 4, 'linear', 8);
    const rng = createRng(11);
    const global = { a: randomMatrix(4, 7, rng, 0.3), b: randomMatrix(9, 4, rng, 0.2) };
    const clients = clientsAtRanks(s, [2, 4], rng);
    const w0 = randomBase(s, rng);
    const agg = createFlora().aggregate(1, { spec: s, factors: global }, results(clients), [])!;
    const scale = specScaling(s);
    // Client 0 trained at rank 2 from the first two components: its base held s·B_g[:, 2:]A_g[2:, :].
    const w0Client0 = Float64Array.from(w0.data);
    const dropped = refDense({ a: rows(global.a, 2, 4), b: cols(global.b, 2, 4) });
    dropped.forEach((v, x) => (w0Client0[x] += scale * v));
    const ideal = new Float64Array(w0.data.length);
    const c0 = refDense(clients[0]);
    const c1 = refDense(clients[1]);
    for (let x = 0; x < ideal.length; x++) ideal[x] = 0.5 * (w0Client0[x] + scale * c0[x]) + 0.5 * (w0.data[x] + scale * c1[x]);
    const effective = refEffectiveWeight(await applied(w0, agg, 'linear'), agg.global.factors!, scale, 'linear');
    assert.ok(maxAbsDiff(effective, ideal) <= REL_TOL * maxAbs(ideal.map((v, i) => v - w0.data[i])) + BASE_TOL * maxAbs(w0.data));
  });

  test('untrained uploads (B = 0) leave the base bit-identical; an empty round is nothing usable', () => {
    const s = spec('m', 5, 4, 2, 'linear');
    const start = freshAdapter(0, 0, s);
    const agg = createFlora().aggregate(1, { spec: s, factors: start }, results([start, start]), [])!;
    assert.equal(agg.baseUpdate, null);
    assert.equal(createFlora().aggregate(1, { spec: s, factors: start }, [], []), null);
  });

  test('bad input: a rank above the global one, a bad seed, a robust rule', () => {
    const s = spec('m', 5, 4, 2, 'linear');
    const big = clientsAtRanks(s, [3], createRng(1));
    assert.throws(() => createFlora().aggregate(1, { spec: s, factors: null }, results(big), []), /flora: client 0: module 'm': lora_A has rank 3, above the global rank 2/);
    assert.throws(() => createFlora({ seed: -1 }), /flora: seed must be an integer/);
    assert.throws(() => createStrategy('flora', { aggregation: { name: 'median' } }), /flora: the median rule is not supported/);
  });
});

function pad(f: LoraFactors, rank: number): LoraFactors {
  const [r, inF] = f.a.shape;
  const out = f.b.shape[0];
  const a = new Float32Array(rank * inF);
  a.set(f.a.data);
  const b = new Float32Array(out * rank);
  for (let o = 0; o < out; o++) for (let j = 0; j < r; j++) b[o * rank + j] = f.b.data[o * r + j];
  return { a: { shape: [rank, inF], data: a }, b: { shape: [out, rank], data: b } };
}

function rows(m: { shape: readonly [number, number]; data: Float32Array }, from: number, to: number): { shape: [number, number]; data: Float32Array } {
  return { shape: [to - from, m.shape[1]], data: m.data.slice(from * m.shape[1], to * m.shape[1]) };
}

function cols(m: { shape: readonly [number, number]; data: Float32Array }, from: number, to: number): { shape: [number, number]; data: Float32Array } {
  const [n, c] = m.shape;
  const data = new Float32Array(n * (to - from));
  for (let i = 0; i < n; i++) for (let j = from; j < to; j++) data[i * (to - from) + j - from] = m.data[i * c + j];
  return { shape: [n, to - from], data };
}

/** B·A in float64, out × in. */
function refDense(f: LoraFactors): Float64Array {
  const [r, inF] = f.a.shape;
  const out = f.b.shape[0];
  const d = new Float64Array(out * inF);
  for (let o = 0; o < out; o++) for (let j = 0; j < r; j++) for (let x = 0; x < inF; x++) d[o * inF + x] += f.b.data[o * r + j] * f.a.data[j * inF + x];
  return d;
}
