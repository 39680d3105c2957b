// A client's update norm under DP (Gram matrices in the differences) against the dense float64
// vector [A_i − Ā_g, B_i − B̄_g, s·(B_iA_i − B̄_gĀ_g)], and the clipping factor that scales an
// oversized update to norm exactly C.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clipFactor, moduleUpdateNorms, type PrivateParts } from '../../../src/core/privacy/clientUpdate.js';
import { specScaling, type LoraFactors, type LoraModuleSpec } from '../../../src/core/lora.js';
import { createRng, randomMatrix } from '../../../src/core/random.js';
import { refMatmul, spec } from '../reference.js';

/** The dense update vector of one module in float64 (the reference the norms must match). */
function denseUpdate(s: LoraModuleSpec, global: LoraFactors, client: LoraFactors, parts: PrivateParts): number[] {
  const scale = specScaling(s);
  const da = Array.from(client.a.data, (v, i) => v - global.a.data[i]);
  const db = Array.from(client.b.data, (v, i) => v - global.b.data[i]);
  const ci = refMatmul(client.b, client.a);
  const gg = refMatmul(global.b, global.a);
  const u = Array.from(ci, (v, i) => scale * (v - gg[i]));
  return parts === 'ffa' ? db : parts === 'fedit' ? [...da, ...db] : [...da, ...db, ...u];
}

const norm = (v: readonly number[]): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

function perturbed(f: LoraFactors, size: number, seed: number): LoraFactors {
  const rng = createRng(seed);
  const a = randomMatrix(f.a.shape[0], f.a.shape[1], rng, size);
  const b = randomMatrix(f.b.shape[0], f.b.shape[1], rng, size);
  return { a: { shape: a.shape, data: a.data.map((v, i) => Math.fround(f.a.data[i] + v)) }, b: { shape: b.shape, data: b.data.map((v, i) => Math.fround(f.b.data[i] + v)) } };
}

describe('client update norms under DP', () => {
  for (const [out, inF, layout, rslora] of [[13, 7, 'linear', false], [7, 13, 'conv1d', true], [9, 9, 'linear', false]] as const) {
    test(`${layout} ${out}×${inF}${rslora ? ' rsLoRA' : ''}: every part's norm equals the dense float64 vector's`, () => {
      const s = spec('h.0.attn.c_attn', out, inF, 3, layout, 12, rslora);
      const rng = createRng(out * 31 + inF);
      const global = { a: randomMatrix(3, inF, rng, 0.5), b: randomMatrix(out, 3, rng, 0.5) };
      const client = { a: randomMatrix(3, inF, rng, 0.5), b: randomMatrix(out, 3, rng, 0.5) };
      for (const parts of ['fedex', 'fedit', 'ffa'] as const) {
        const n = moduleUpdateNorms(s, specScaling(s), global, client, parts, 0, 'c0');
        const want = norm(denseUpdate(s, global, client, parts));
        const got = Math.sqrt(n.a + n.b + n.product);
        assert.ok(Math.abs(got - want) <= 1e-12 * want, `${parts}: ${got} vs ${want}`);
      }
      const n = moduleUpdateNorms(s, specScaling(s), global, client, 'fedex', 0);
      assert.ok(n.product > 0 && n.a > 0 && n.b > 0);
    });
  }

  test('a small update next to a large global product keeps its digits (1e-4 steps on unit factors)', () => {
    const s = spec('m', 40, 30, 4, 'linear');
    const rng = createRng(5);
    const global = { a: randomMatrix(4, 30, rng, 1), b: randomMatrix(40, 4, rng, 1) };
    const client = perturbed(global, 1e-4, 6);
    const n = moduleUpdateNorms(s, specScaling(s), global, client, 'fedex', 0);
    const u = denseUpdate(s, global, client, 'fedex').slice(4 * 30 + 40 * 4);
    const want = norm(u);
    assert.ok(Math.abs(Math.sqrt(n.product) - want) <= 1e-9 * want, `${Math.sqrt(n.product)} vs ${want}`);
  });

  test('clipping scales an oversized update to norm exactly C and leaves a small one alone', () => {
    const s = spec('m', 12, 10, 2, 'conv1d');
    const rng = createRng(8);
    const global = { a: randomMatrix(2, 10, rng, 0.3), b: randomMatrix(12, 2, rng, 0.3) };
    const client = { a: randomMatrix(2, 10, rng, 3), b: randomMatrix(12, 2, rng, 3) };
    const n = moduleUpdateNorms(s, specScaling(s), global, client, 'fedex', 0);
    const v = denseUpdate(s, global, client, 'fedex');
    const clip = norm(v) / 7;
    const gamma = clipFactor(Math.sqrt(n.a + n.b + n.product), clip);
    const clipped = norm(v.map((x) => gamma * x));
    assert.ok(Math.abs(clipped - clip) <= 1e-12 * clip, `‖γ·v‖ = ${clipped}, C = ${clip}`);
    assert.equal(clipFactor(clip / 2, clip), 1);
    assert.equal(clipFactor(0, clip), 1);
  });

  test('bad inputs name the client, module and tensor', () => {
    const s = spec('h.2.mlp.c_fc', 6, 4, 2, 'linear');
    const rng = createRng(1);
    const global = { a: randomMatrix(2, 4, rng), b: randomMatrix(6, 2, rng) };
    assert.throws(() => moduleUpdateNorms(s, 2, global, { a: randomMatrix(2, 5, rng), b: global.b }, 'fedex', 3, 'alice'), /client 3 \('alice'\): module 'h\.2\.mlp\.c_fc': lora_A has shape \[2, 5\], expected \[2, 4\]/);
    const nan = { a: global.a, b: { shape: global.b.shape, data: Float32Array.from(global.b.data, (v, i) => (i === 3 ? NaN : v)) } };
    assert.throws(() => moduleUpdateNorms(s, 2, nan, global, 'fedex', 0), /module 'h\.2\.mlp\.c_fc': the global adapter's lora_B has a non-finite value NaN at index 3/);
    assert.throws(() => clipFactor(1, 0), /clipping bound must be a finite number > 0, got 0/);
    assert.throws(() => clipFactor(NaN, 1), /update norm must be a finite number ≥ 0, got NaN/);
  });
});
