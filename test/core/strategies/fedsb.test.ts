// Fed-SB (core/strategies/fedsb.ts, docs/math.md §1.5): A and B frozen and shared, R averaged, so
// W0 + s·B·R̄·A = Σ w_i (W0 + s·B·R_i·A). Checked against an independent float64 reference of
// B·R·A (explicit products and transpose) for both layouts, square and non-square modules, uniform
// and example weights; and the refusals (changed A or B, missing R, R given to another strategy).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { specScaling, type Layout, type LoraFactors, type LoraModuleSpec } from '../../../src/core/lora.js';
import { initSbFactors } from '../../../src/core/loraSb.js';
import { createRng, randomMatrix, type Rng } from '../../../src/core/random.js';
import { createStrategy } from '../../../src/core/strategies/registry.js';
import type { ClientModuleResult } from '../../../src/core/strategies/types.js';
import type { Matrix } from '../../../src/core/tensor.js';
import { maxAbs, maxAbsDiff, randomBase, refMatmul, refTranspose, spec } from '../reference.js';

// float32 round-off of R̄ (one rounding of a float64 sum) and of the product, relative to the update.
const REL_TOL = 1e-5;

function asMatrix(data: Float64Array, rows: number, cols: number): Matrix<Float64Array> {
  return { shape: [rows, cols], data };
}

/** B·R·A in float64 (out × in), laid out like W0 (transposed for conv1d). */
function refSbDelta(f: LoraFactors, layout: Layout): Float64Array {
  const [out, r] = f.b.shape;
  const inF = f.a.shape[1];
  const br = refMatmul(f.b, f.r!);
  const bra = refMatmul(asMatrix(br, out, r), f.a);
  return layout === 'linear' ? bra : refTranspose(bra, out, inF);
}

/** k clients on the shared (A, B) with client-specific trained R. */
function sbClients(s: LoraModuleSpec, k: number, rng: Rng): { shared: LoraFactors; clients: LoraFactors[] } {
  const shared = initSbFactors(5, { name: s.name, rank: s.rank, inFeatures: s.inFeatures, outFeatures: s.outFeatures });
  const clients = Array.from({ length: k }, () => ({ a: shared.a, b: shared.b, r: randomMatrix(s.rank, s.rank, rng, 0.5) }));
  return { shared, clients };
}

function results(clients: readonly LoraFactors[], examples?: readonly number[]): ClientModuleResult[] {
  return clients.map((factors, client) => ({ client, factors, ...(examples !== undefined ? { numExamples: examples[client] } : {}) }));
}

describe('Fed-SB exactness: W0 + s·B·R̄·A = Σ w_i (W0 + s·B·R_i·A)', () => {
  const shapes: [string, number, number][] = [['square', 12, 12], ['wide', 7, 19], ['tall', 21, 9]];
  let seed = 900;
  for (const [shapeName, out, inF] of shapes) {
    for (const layout of ['linear', 'conv1d'] as const) {
      for (const weighting of ['uniform', 'examples'] as const) {
        const caseSeed = seed++;
        test(`${shapeName} ${out}×${inF} ${layout} ${weighting}`, () => {
          const s = spec('model.layers.2.self_attn.q_proj', out, inF, 4, layout, 8);
          const rng = createRng(caseSeed);
          const { shared, clients } = sbClients(s, 3, rng);
          const w0 = randomBase(s, rng);
          const examples = weighting === 'examples' ? [4, 9, 30] : undefined;

          const agg = createStrategy('fedsb', { weighting }).aggregate(3, { spec: s, factors: shared }, results(clients, examples), []);

          assert.ok(agg !== null);
          const scale = specScaling(s);
          const weights = agg.metrics.weights;
          if (weighting === 'examples') assert.deepEqual(weights.map((w) => Math.round(w * 43)), [4, 9, 30]);
          const ideal = new Float64Array(w0.data.length);
          clients.forEach((c, i) => {
            const d = refSbDelta(c, layout);
            for (let x = 0; x < ideal.length; x++) ideal[x] += weights[i] * (w0.data[x] + scale * d[x]);
          });
          const g = refSbDelta(agg.global.factors!, layout);
          const effective = Float64Array.from(w0.data, (v, x) => v + scale * g[x]);
          const update = maxAbs(ideal.map((v, x) => v - w0.data[x]));
          assert.ok(update > 1e-3, `the test data has a visible update (${update})`);
          assert.ok(maxAbsDiff(effective, ideal) <= REL_TOL * update, `max-abs error ${maxAbsDiff(effective, ideal)} vs update ${update}`);
          assert.equal(agg.baseUpdate, null, 'the base is unchanged');
          assert.deepEqual(agg.global.factors!.a, shared.a, 'A kept');
          assert.deepEqual(agg.global.factors!.b, shared.b, 'B kept');
          assert.equal(agg.metrics.exact, true);
          assert.ok(agg.metrics.relativeDeviation < 1e-5, `plain averaging of (A, B·R_i) loses nothing (${agg.metrics.relativeDeviation})`);
        });
      }
    }
  }

  test('a client whose A or B differs from the global adapter is refused, naming it and the entry', () => {
    const s = spec('m', 6, 5, 2, 'linear');
    const { shared, clients } = sbClients(s, 2, createRng(1));
    const b = Float32Array.from(shared.b.data);
    b[3] += 1e-6;
    const changed = [clients[0], { ...clients[1], b: { shape: shared.b.shape, data: b } }];
    assert.throws(() => createStrategy('fedsb').aggregate(1, { spec: s, factors: shared }, results(changed), []), /client 1's lora_B differs from the global adapter's at \[1, 1\]/);
  });

  test('a client without R is refused; R handed to another strategy is refused, not dropped', () => {
    const s = spec('m', 6, 5, 2, 'conv1d');
    const { shared, clients } = sbClients(s, 2, createRng(2));
    const noR = [clients[0], { a: shared.a, b: shared.b }];
    assert.throws(() => createStrategy('fedsb').aggregate(1, { spec: s, factors: shared }, results(noR), []), /client 1: module 'm': no lora_R/);
    assert.throws(() => createStrategy('ffa').aggregate(1, { spec: s, factors: shared }, results(clients), []), /ffa: client 0: module 'm' carries a Fed-SB lora_R; only fedsb aggregates it/);
    const badR = [clients[0], { ...clients[1], r: randomMatrix(3, 3, createRng(3)) }];
    assert.throws(() => createStrategy('fedsb').aggregate(1, { spec: s, factors: shared }, results(badR), []), /lora_R has shape \[3, 3\], expected \[2, 2\]/);
  });

  test('robust rules are refused with fedsb; an empty round is nothing usable', () => {
    assert.throws(() => createStrategy('fedsb', { aggregation: { name: 'median' } }), /fedsb: the median rule is not supported/);
    const s = spec('m', 4, 4, 2, 'linear');
    assert.equal(createStrategy('fedsb').aggregate(1, { spec: s, factors: sbClients(s, 1, createRng(4)).shared }, [], []), null);
  });
});
