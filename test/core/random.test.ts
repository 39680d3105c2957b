import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng, fillGaussian, kaimingUniform, mulberry32, sampleWithoutReplacement } from '../../src/core/random.js';

describe('random', () => {
  test('mulberry32 is deterministic per seed and differs across seeds', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const sa = Array.from({ length: 5 }, () => a());
    const sb = Array.from({ length: 5 }, () => b());
    const sc = Array.from({ length: 5 }, () => c());

    assert.deepEqual(sa, sb);
    assert.notDeepEqual(sa, sc);
    assert.ok(sa.every((v) => v >= 0 && v < 1));
  });

  test('uniform values have mean 1/2 and variance 1/12 (n = 20000, 5σ bounds)', () => {
    const rng = createRng(1);
    const n = 20000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = rng.next();
      s += v;
      s2 += v * v;
    }
    const mean = s / n;
    const variance = s2 / n - mean * mean;
    assert.ok(Math.abs(mean - 0.5) < 5 * Math.sqrt(1 / 12 / n), `mean ${mean}`);
    assert.ok(Math.abs(variance - 1 / 12) < 0.005, `variance ${variance}`);
  });

  test('Box–Muller gives standard normals: mean 0, variance 1, ~68% within 1σ', () => {
    const n = 20000;
    const x = fillGaussian(new Float64Array(n), createRng(2));
    const mean = x.reduce((a, b) => a + b, 0) / n;
    const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
    const within = x.filter((v) => Math.abs(v) < 1).length / n;

    assert.ok(Math.abs(mean) < 5 / Math.sqrt(n), `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.05, `variance ${variance}`);
    assert.ok(Math.abs(within - 0.6827) < 0.02, `within 1σ ${within}`);
    assert.ok(x.every(Number.isFinite));
  });

  test('Kaiming-uniform with a = √5 (PEFT lora_A) is bounded by 1/√fan_in and fills the range', () => {
    const m = kaimingUniform(8, 64, createRng(3));
    const bound = 1 / Math.sqrt(64);
    const max = Math.max(...m.data.map(Math.abs));

    assert.deepEqual(m.shape, [8, 64]);
    assert.ok(max <= bound, `max ${max} > ${bound}`);
    assert.ok(max > 0.9 * bound, 'the range is used');
  });

  test('sampling without replacement is sorted, distinct, in range and seeded', () => {
    const a = sampleWithoutReplacement(1000, 50, createRng(9));
    const b = sampleWithoutReplacement(1000, 50, createRng(9));
    const all = sampleWithoutReplacement(7, 7, createRng(1));

    assert.deepEqual(a, b);
    assert.equal(new Set(a).size, 50);
    assert.ok(a.every((v, i) => v >= 0 && v < 1000 && (i === 0 || v > a[i - 1])));
    assert.deepEqual(all, [0, 1, 2, 3, 4, 5, 6]);
    assert.throws(() => sampleWithoutReplacement(3, 4, createRng(1)), /count must be an integer in \[0, 3\]/);
  });
});
