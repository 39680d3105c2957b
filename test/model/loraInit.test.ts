import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRng } from '../../src/core/random.js';
import { initLoraAdapters, initLoraFactors, moduleSeed } from '../../src/model/loraInit.js';

describe('PEFT LoRA initialisation', () => {
  test('A is uniform within ±1/√in (Kaiming, a = √5) and fills the range; B is all zeros', () => {
    const inF = 64;
    const { a, b } = initLoraFactors(inF, 48, 8, createRng(3));
    assert.deepEqual(a.shape, [8, inF]);
    assert.deepEqual(b.shape, [48, 8]);
    const bound = 1 / Math.sqrt(inF);
    let max = 0;
    let sum = 0;
    let sumSq = 0;
    for (const x of a.data) {
      max = Math.max(max, Math.abs(x));
      sum += x;
      sumSq += x * x;
    }
    assert.ok(max <= bound, `max |A| ${max} exceeds the bound ${bound}`);
    assert.ok(max > 0.95 * bound, `max |A| ${max} does not reach near the bound ${bound}`);
    // Uniform(±bound): mean 0, variance bound²/3 (512 samples: generous tolerances).
    const n = a.data.length;
    assert.ok(Math.abs(sum / n) < 0.15 * bound);
    assert.ok(Math.abs(sumSq / n / (bound * bound / 3) - 1) < 0.2);
    assert.ok(b.data.every((x) => x === 0));
  });

  test('per-module seeding: same (seed, path) gives the same A whatever the module order; other seeds or paths differ', () => {
    const mods = [
      { path: 'transformer.h.0.attn.c_attn', inFeatures: 16, outFeatures: 48 },
      { path: 'transformer.h.0.mlp.c_proj', inFeatures: 64, outFeatures: 16 },
    ];
    const x = initLoraAdapters(mods, 4, 7);
    const y = initLoraAdapters([...mods].reverse(), 4, 7);
    const z = initLoraAdapters(mods, 4, 8);
    for (const m of mods) {
      assert.deepEqual(x.get(m.path)!.a.data, y.get(m.path)!.a.data);
      assert.notDeepEqual(x.get(m.path)!.a.data, z.get(m.path)!.a.data);
      assert.deepEqual(x.get(m.path)!.a.shape, [4, m.inFeatures]);
      assert.deepEqual(x.get(m.path)!.b.shape, [m.outFeatures, 4]);
    }
    assert.notEqual(moduleSeed(7, mods[0].path), moduleSeed(7, mods[1].path));
  });

  test('a non-positive rank is an error naming r', () => {
    assert.throws(() => initLoraFactors(4, 4, 0, createRng(1)), /rank r must be a positive integer, got 0/);
  });
});
