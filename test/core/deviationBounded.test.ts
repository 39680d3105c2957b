// The bounded-cost deviation norms the coordinator uses (deviationNormsBounded): through Gram
// matrices when the residual is small factored, through one dense product otherwise; both agree
// with the core's float64 definition.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deviationNorms, deviationNormsBounded } from '../../src/core/deviation.js';
import type { LoraFactors } from '../../src/core/lora.js';
import { createTypeScriptBackend } from '../../src/core/product.js';
import { createRng, randomMatrix } from '../../src/core/random.js';

const backend = createTypeScriptBackend();

function average(clients: LoraFactors[], w: number[]): LoraFactors {
  const avg = (pick: (f: LoraFactors) => Float32Array): Float32Array => {
    const out = new Float32Array(pick(clients[0]).length);
    clients.forEach((c, i) => pick(c).forEach((v, j) => (out[j] += w[i] * v)));
    return out;
  };
  return { a: { shape: clients[0].a.shape, data: avg((f) => f.a.data) }, b: { shape: clients[0].b.shape, data: avg((f) => f.b.data) } };
}

for (const [label, out, inF, k] of [['small k·r: Gram', 64, 48, 2], ['large k·r: dense product', 12, 10, 5]] as const) {
  test(`deviation norms (${label}) match the core's definition`, async () => {
    const rng = createRng(9);
    const r = 2;
    const clients = Array.from({ length: k }, () => ({ a: randomMatrix(r, inF, rng, 0.3), b: randomMatrix(out, r, rng, 0.3) }));
    const weights = Array.from({ length: k }, (_, i) => (i + 1) / ((k * (k + 1)) / 2));
    const global = average(clients, weights);
    const want = deviationNorms(clients, weights, global.a, global.b, 1.5);
    const got = await deviationNormsBounded({ clients, weights, abar: global.a, bbar: global.b, scale: 1.5 }, backend);
    assert.ok(want.deviationNorm > 0.1);
    for (const key of ['deviationNorm', 'idealUpdateNorm', 'relativeDeviation'] as const) {
      assert.ok(Math.abs(got[key] - want[key]) <= 1e-5 * want[key], `${key}: ${got[key]} vs ${want[key]}`);
    }
  });
}
