// One module's private round (core/privacy/privateAggregate.ts) against float64 references:
// with σ = 0 the global model W0 + D + s·B̄Ā equals W0 + s·B̄_gĀ_g + (1/m)·Σ γ_i U_i exactly (up to
// float32 round-off), in both weight layouts; an oversized client is released at norm exactly C; and
// with σ > 0 every released coordinate (Ā, B̄ and the effective weight) deviates from that by
// N(0, (σC/m)²), checked on ≥ 1e5 coordinates within 6 standard errors of the sample std (1/√(2n)).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clipFactor, moduleUpdateNorms, type PrivateParts } from '../../../src/core/privacy/clientUpdate.js';
import { privateModuleAggregate, type PrivateModuleInput } from '../../../src/core/privacy/privateAggregate.js';
import { specScaling, type Layout, type LoraFactors, type LoraModuleSpec } from '../../../src/core/lora.js';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import { createRng, randomMatrix } from '../../../src/core/random.js';
import type { Matrix } from '../../../src/core/tensor.js';
import { maxAbs, maxAbsDiff, randomBase, refMatmul, refTranspose, spec } from '../reference.js';
import { seededGaussianSource } from './seededNoise.js';

const backend = createTypeScriptBackend();

/** A round: global factors (a previous round's, non-zero), k clients near them, one oversized. */
function fixture(out: number, inF: number, r: number, layout: Layout, k: number, seed: number): { s: LoraModuleSpec; global: LoraFactors; clients: LoraFactors[]; w0: Matrix<Float32Array> } {
  const s = spec('transformer.h.0.attn.c_attn', out, inF, r, layout, 8);
  const rng = createRng(seed);
  const global = { a: randomMatrix(r, inF, rng, 0.4), b: randomMatrix(out, r, rng, 0.4) };
  const clients = Array.from({ length: k }, (_, i) => {
    const size = i === 0 ? 2 : 0.1;
    const da = randomMatrix(r, inF, rng, size);
    const db = randomMatrix(out, r, rng, size);
    return {
      a: { shape: global.a.shape, data: global.a.data.map((v, x) => Math.fround(v + da.data[x])) },
      b: { shape: global.b.shape, data: global.b.data.map((v, x) => Math.fround(v + db.data[x])) },
    };
  });
  return { s, global, clients, w0: randomBase(s, rng) };
}

/** γ_i for a single-module update vector with clipping bound C. */
function gammas(s: LoraModuleSpec, global: LoraFactors, clients: readonly LoraFactors[], clip: number, parts: PrivateParts): number[] {
  return clients.map((c, i) => {
    const n = moduleUpdateNorms(s, specScaling(s), global, c, parts, i);
    return clipFactor(Math.sqrt(n.a + n.b + n.product), clip);
  });
}

/** (1/m)·Σ γ_i·s·(B_iA_i − B̄_gĀ_g) in float64, out × in. */
function refMeanU(s: LoraModuleSpec, global: LoraFactors, clients: readonly LoraFactors[], g: readonly number[], m: number): Float64Array {
  const scale = specScaling(s);
  const gg = refMatmul(global.b, global.a);
  const acc = new Float64Array(gg.length);
  clients.forEach((c, i) => {
    const ci = refMatmul(c.b, c.a);
    for (let x = 0; x < acc.length; x++) acc[x] += (g[i] / m) * scale * (ci[x] - gg[x]);
  });
  return acc;
}

/** The change of the effective weight over the round, out × in, in float64: D + s·B̄Ā − s·B̄_gĀ_g. */
function effectiveChange(s: LoraModuleSpec, global: LoraFactors, next: LoraFactors, d: Matrix<Float32Array>): Float64Array {
  const scale = specScaling(s);
  const now = refMatmul(next.b, next.a);
  const before = refMatmul(global.b, global.a);
  return Float64Array.from(d.data, (v, x) => v + scale * (now[x] - before[x]));
}

function sampleStd(x: ArrayLike<number>): { mean: number; std: number } {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i] / x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - mean) ** 2 / x.length;
  return { mean, std: Math.sqrt(v) };
}

function assertStd(x: ArrayLike<number>, want: number, what: string): void {
  const { mean, std } = sampleStd(x);
  const se = 1 / Math.sqrt(2 * x.length);
  assert.ok(Math.abs(std / want - 1) < 6 * se, `${what}: std ${std}, expected ${want} (n = ${x.length}, tolerance ${(6 * se * 100).toFixed(2)}%)`);
  assert.ok(Math.abs(mean) < (6 * want) / Math.sqrt(x.length), `${what}: mean ${mean}`);
}

function input(s: LoraModuleSpec, global: LoraFactors, clients: LoraFactors[], g: readonly number[], m: number, std: number, parts: PrivateParts): PrivateModuleInput {
  return { spec: s, scale: specScaling(s), global, clients, coefficients: g.map((x) => x / m), noiseStd: std, parts };
}

/** ‖[Ā − Ā_g, B̄ − B̄_g, ΔW_eff]‖₂ of what one round released. */
function releasedNorm(s: LoraModuleSpec, global: LoraFactors, agg: Awaited<ReturnType<typeof privateModuleAggregate>>): number {
  let sq = 0;
  for (let x = 0; x < global.a.data.length; x++) sq += (agg.factors.a.data[x] - global.a.data[x]) ** 2;
  for (let x = 0; x < global.b.data.length; x++) sq += (agg.factors.b.data[x] - global.b.data[x]) ** 2;
  for (const v of effectiveChange(s, global, agg.factors, agg.baseUpdate!)) sq += v * v;
  return Math.sqrt(sq);
}

describe('private module aggregate (σ = 0): the global model is W0 + s·B̄_gĀ_g + the mean of the clipped updates', () => {
  for (const [out, inF, layout] of [[11, 7, 'linear'], [7, 11, 'conv1d'], [9, 9, 'conv1d'], [9, 9, 'linear']] as const) {
    test(`${layout} ${out}×${inF}: 3 of m = 4 sampled clients delivered, one clipped`, async () => {
      const { s, global, clients, w0 } = fixture(out, inF, 2, layout, 3, out * 100 + inF);
      const clip = 10;
      const g = gammas(s, global, clients, clip, 'fedex');
      assert.ok(g[0] < 1 && g[1] === 1 && g[2] === 1, `one client clipped: ${g.join(', ')}`);
      const m = 4;
      const agg = await privateModuleAggregate(input(s, global, clients, g, m, 0, 'fedex'), seededGaussianSource(1), backend);
      // The factors: Ā = Ā_g + Σ (γ_i/m)(A_i − Ā_g), likewise B̄.
      const refA = Float64Array.from(global.a.data, (v, x) => v + clients.reduce((acc, c, i) => acc + (g[i] / m) * (c.a.data[x] - v), 0));
      const refB = Float64Array.from(global.b.data, (v, x) => v + clients.reduce((acc, c, i) => acc + (g[i] / m) * (c.b.data[x] - v), 0));
      assert.ok(maxAbsDiff(agg.factors.a.data, refA) <= 1e-7 * maxAbs(refA));
      assert.ok(maxAbsDiff(agg.factors.b.data, refB) <= 1e-7 * maxAbs(refB));
      // The effective weight's change is the mean clipped U, to float32 round-off of the update.
      const u = refMeanU(s, global, clients, g, m);
      const change = effectiveChange(s, global, agg.factors, agg.baseUpdate!);
      assert.ok(maxAbsDiff(change, u) <= 2e-6 * maxAbs(u), `max error ${maxAbsDiff(change, u)} vs update ${maxAbs(u)}`);
      // Folded into W0 in its stored layout: W0' + s·B̄Ā (layout-aware) = W0 + s·B̄_gĀ_g + Ū.
      const scale = specScaling(s);
      const stored = (x: Float64Array): Float64Array => (layout === 'linear' ? x : refTranspose(x, out, inF));
      const d = stored(Float64Array.from(agg.baseUpdate!.data));
      const w0New = Float32Array.from(w0.data, (v, x) => v + d[x]);
      const now = stored(refMatmul(agg.factors.b, agg.factors.a));
      const before = stored(refMatmul(global.b, global.a));
      const ub = stored(u);
      const got = Float64Array.from(w0New, (v, x) => v + scale * now[x]);
      const want = Float64Array.from(w0.data, (v, x) => v + scale * before[x] + ub[x]);
      assert.ok(maxAbsDiff(got, want) <= 2e-6 * (maxAbs(want) + maxAbs(u)), `stored ${layout}: max error ${maxAbsDiff(got, want)}`);
      // A wrong transpose would not pass: the update is not symmetric.
      if (out === inF && layout === 'conv1d') assert.ok(maxAbsDiff(ub, u) > 1e-3 * maxAbs(u));
    });
  }

  test('an oversized client alone is released at norm exactly C: ‖[Ā − Ā_g, B̄ − B̄_g, ΔW_eff]‖ = C', async () => {
    const { s, global, clients } = fixture(10, 6, 3, 'conv1d', 1, 77);
    const clip = 0.25;
    const g = gammas(s, global, clients, clip, 'fedex');
    assert.ok(g[0] < 0.1);
    const agg = await privateModuleAggregate(input(s, global, clients, g, 1, 0, 'fedex'), seededGaussianSource(2), backend);
    const released = releasedNorm(s, global, agg);
    assert.ok(Math.abs(released - clip) <= 1e-5 * clip, `released norm ${released}, C = ${clip}`);
  });

  test('an absurd client (entries 3e38, products 1e77) is still released at norm exactly C: no float32 underflow in the clipped factors', async () => {
    const { s, global } = fixture(10, 6, 3, 'linear', 0, 78);
    const huge = { a: { shape: global.a.shape, data: global.a.data.map((v, x) => v + (x % 3 === 0 ? 3e38 : -1e38)) }, b: { shape: global.b.shape, data: global.b.data.map((v, x) => v + (x % 2 === 0 ? 3e38 : 2e37)) } };
    const clip = 0.25;
    const g = gammas(s, global, [huge], clip, 'fedex');
    assert.ok(g[0] < 1e-76, `γ = ${g[0]}`);
    const agg = await privateModuleAggregate(input(s, global, [huge], g, 1, 0, 'fedex'), seededGaussianSource(2), backend);
    const released = releasedNorm(s, global, agg);
    assert.ok(Math.abs(released - clip) <= 1e-5 * clip, `released norm ${released}, C = ${clip}`);
  });

  test('FedIT releases the factors only; FFA-LoRA keeps A bit for bit', async () => {
    const { s, global, clients } = fixture(8, 5, 2, 'linear', 2, 9);
    const fedit = await privateModuleAggregate(input(s, global, clients, [1, 1], 2, 0.01, 'fedit'), seededGaussianSource(3), backend);
    assert.equal(fedit.baseUpdate, null);
    assert.ok(maxAbsDiff(fedit.factors.a.data, global.a.data) > 0);
    const frozen = clients.map((c) => ({ a: global.a, b: c.b }));
    const ffa = await privateModuleAggregate(input(s, global, frozen, [1, 1], 2, 0.01, 'ffa'), seededGaussianSource(3), backend);
    assert.equal(ffa.baseUpdate, null);
    assert.deepEqual(ffa.factors.a.data, global.a.data);
    assert.ok(maxAbsDiff(ffa.factors.b.data, global.b.data) > 0);
  });
});

describe('private module aggregate (σ > 0): the noise', () => {
  // 512 × 640, r = 96: 110 592 factor coordinates and 327 680 coordinates of the effective weight.
  const out = 512;
  const inF = 640;
  const r = 96;
  const sigma = 1.3;
  const clip = 0.7;
  const m = 3;
  const std = (sigma * clip) / m;

  test('zero-update clients: Ā − Ā_g, B̄ − B̄_g and the effective weight change all have std σC/m', async () => {
    const { s, global } = fixture(out, inF, r, 'linear', 0, 11);
    const same = [global, global, global];
    const agg = await privateModuleAggregate(input(s, global, same, [1, 1, 1], m, std, 'fedex'), seededGaussianSource(12), backend);
    const factorNoise = [...Array.from(agg.factors.a.data, (v, x) => v - global.a.data[x]), ...Array.from(agg.factors.b.data, (v, x) => v - global.b.data[x])];
    assert.ok(factorNoise.length >= 1e5);
    assertStd(factorNoise, std, 'factors');
    // The base absorbs s·(B̄Ā − B̄_gĀ_g): the A and B noise does not reach the effective weight, only N_U does.
    assertStd(effectiveChange(s, global, agg.factors, agg.baseUpdate!), std, 'effective weight');
  });

  test('real clients, conv1d: the deviation from the σ = 0 result has std σC/m, in the factors and the effective weight', async () => {
    const { s, global, clients } = fixture(out, inF, r, 'conv1d', 3, 13);
    const g = gammas(s, global, clients, clip, 'fedex');
    assert.ok(g.every((x) => x < 1), 'all clipped (so every client moves the aggregate by exactly C/m)');
    const exact = await privateModuleAggregate(input(s, global, clients, g, m, 0, 'fedex'), seededGaussianSource(14), backend);
    const noisy = await privateModuleAggregate(input(s, global, clients, g, m, std, 'fedex'), seededGaussianSource(15), backend);
    const da = Array.from(noisy.factors.a.data, (v, x) => v - exact.factors.a.data[x]);
    const db = Array.from(noisy.factors.b.data, (v, x) => v - exact.factors.b.data[x]);
    assertStd([...da, ...db], std, 'factors');
    const e0 = effectiveChange(s, global, exact.factors, exact.baseUpdate!);
    const e1 = effectiveChange(s, global, noisy.factors, noisy.baseUpdate!);
    assertStd(Float64Array.from(e1, (v, x) => v - e0[x]), std, 'effective weight');
  });
});

describe('private module aggregate: bad input', () => {
  test('errors name the module, the client and the value', async () => {
    const { s, global, clients } = fixture(6, 4, 2, 'linear', 2, 3);
    const noise = seededGaussianSource(1);
    await assert.rejects(privateModuleAggregate({ ...input(s, global, clients, [1, 1], 2, 0, 'fedex'), coefficients: [0.5] }, noise, backend), /2 clients but 1 coefficients/);
    await assert.rejects(privateModuleAggregate({ ...input(s, global, clients, [1, 1], 2, 0, 'fedex'), coefficients: [0.5, 1.5] }, noise, backend), /coefficient of client 1 must be in \[0, 1\], got 1\.5/);
    await assert.rejects(privateModuleAggregate(input(s, global, clients, [1, 1], 2, -1, 'fedex'), noise, backend), /noise std must be a finite number ≥ 0, got -1/);
    const bad = [clients[0], { a: clients[1].a, b: randomMatrix(5, 2, createRng(1)) }];
    await assert.rejects(privateModuleAggregate({ ...input(s, global, bad, [1, 1], 2, 0, 'fedex'), clientIds: ['a', 'b'] }, noise, backend),
      /client 1 \('b'\): module 'transformer\.h\.0\.attn\.c_attn': lora_B has shape \[5, 2\], expected \[6, 2\]/);
  });
});
