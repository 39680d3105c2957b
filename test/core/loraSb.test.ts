// LoRA-SB's core pieces (core/loraSb.ts): the seeded init (deterministic per (seed, module), R = 0,
// rows of A and columns of B of unit norm in expectation), B·R against a float64 product, and the
// standard factors (A, B·R) of a Fed-SB module.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { effectiveFactors, initSbFactors, sbProduct } from '../../src/core/loraSb.js';
import { createRng, randomMatrix } from '../../src/core/random.js';
import { maxAbs, maxAbsDiff, refMatmul } from './reference.js';

describe('LoRA-SB factors', () => {
  test('the seeded init: same (seed, module) gives the same factors, R = 0, unit-norm rows of A and columns of B on average', () => {
    const m = { name: 'transformer.h.0.attn.c_attn', rank: 8, inFeatures: 400, outFeatures: 1200 };
    const f = initSbFactors(3, m);
    assert.deepEqual(initSbFactors(3, m), f);
    assert.notDeepEqual(initSbFactors(4, m).a.data, f.a.data);
    assert.notDeepEqual(initSbFactors(3, { ...m, name: 'transformer.h.1.attn.c_attn' }).b.data, f.b.data);
    assert.ok(f.r!.data.every((v) => v === 0));
    let rowSq = 0;
    for (let i = 0; i < f.a.data.length; i++) rowSq += f.a.data[i] ** 2;
    let colSq = 0;
    for (let i = 0; i < f.b.data.length; i++) colSq += f.b.data[i] ** 2;
    assert.ok(Math.abs(rowSq / m.rank - 1) < 0.05, `mean squared row norm of A ${rowSq / m.rank}`);
    assert.ok(Math.abs(colSq / m.rank - 1) < 0.05, `mean squared column norm of B ${colSq / m.rank}`);
    assert.throws(() => initSbFactors(-1, m), /seed must be an integer/);
    assert.throws(() => initSbFactors(0, { ...m, rank: 0 }), /rank must be a positive integer/);
  });

  test('B·R matches a float64 product (rounded once); (A, B·R) are the standard factors', () => {
    const rng = createRng(5);
    const b = randomMatrix(13, 4, rng);
    const r = randomMatrix(4, 4, rng);
    const a = randomMatrix(4, 7, rng);
    const ref = refMatmul(b, r);
    const got = sbProduct(b, r);
    assert.deepEqual(got.shape, [13, 4]);
    assert.ok(maxAbsDiff(got.data, ref) <= 1e-7 * maxAbs(ref), `error ${maxAbsDiff(got.data, ref)}`);
    const e = effectiveFactors({ a, b, r });
    assert.equal(e.a, a);
    assert.deepEqual(e.b, got);
    assert.equal(effectiveFactors({ a, b }).b, b, 'plain factors pass through');
    assert.throws(() => sbProduct(b, randomMatrix(3, 4, rng)), /R must be \[4, 4\]/);
  });
});
