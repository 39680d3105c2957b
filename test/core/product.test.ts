import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addScaledProductSync, createTypeScriptBackend, materializeUpdate } from '../../src/core/product.js';
import type { Layout } from '../../src/core/lora.js';
import { createRng, randomMatrix } from '../../src/core/random.js';
import { maxAbs, maxAbsDiff, refMatmul, refTranspose } from './reference.js';

function run(layout: Layout, out: number, inF: number, inner: number, scale: number, seed: number) {
  const rng = createRng(seed);
  const p = randomMatrix(out, inner, rng);
  const q = randomMatrix(inner, inF, rng);
  const w = layout === 'linear' ? randomMatrix(out, inF, rng) : randomMatrix(inF, out, rng);
  const target = { shape: w.shape, data: Float32Array.from(w.data) };
  addScaledProductSync(target, layout, p, q, scale);
  const pq = refMatmul(p, q);
  const laid = layout === 'linear' ? pq : refTranspose(pq, out, inF);
  const expected = Float64Array.from(w.data, (v, i) => v + scale * laid[i]);
  return { target, expected, update: laid.map((v) => scale * v), w };
}

describe('fused product target += s·P·Q (TypeScript backend)', () => {
  // Float64 accumulation, one float32 rounding per entry: ≤ 1 ulp of the result.
  for (const layout of ['linear', 'conv1d'] as const) {
    for (const [out, inF, inner] of [[7, 11, 3], [12, 5, 6], [9, 9, 4], [3, 1500, 2]] as const) {
      test(`${layout} ${out}×${inF} inner ${inner} matches float64`, () => {
        const { target, expected, w } = run(layout, out, inF, inner, -0.75, out * 100 + inF);
        const tol = 2 ** -23 * (maxAbs(expected) + maxAbs(w.data));
        assert.ok(maxAbsDiff(target.data, expected) <= tol, `${maxAbsDiff(target.data, expected)} > ${tol}`);
      });
    }
  }

  test('square conv1d is transposed: non-symmetric data, compared to the independent reference', () => {
    const conv = run('conv1d', 10, 10, 3, 1, 5);
    const linear = run('linear', 10, 10, 3, 1, 5);

    assert.ok(maxAbsDiff(conv.target.data, conv.expected) < 1e-5);
    assert.ok(maxAbsDiff(conv.update, linear.update) > 0.5, 'P·Q is far from symmetric');
    assert.ok(maxAbsDiff(conv.target.data, linear.expected) > 0.5, 'the linear answer is wrong for conv1d');
  });

  test('scale 0 and inner 0 leave the target unchanged; shape errors name the operands', async () => {
    const rng = createRng(2);
    const p = randomMatrix(4, 2, rng);
    const q = randomMatrix(2, 3, rng);
    const target = randomMatrix(4, 3, rng);
    const before = Float32Array.from(target.data);
    const backend = createTypeScriptBackend();
    await backend.addScaledProduct(target, 'linear', p, q, 0);
    await backend.addScaledProduct(target, 'linear', { shape: [4, 0], data: new Float32Array(0) }, { shape: [0, 3], data: new Float32Array(0) }, 1);

    assert.deepEqual(target.data, before);
    await assert.rejects(backend.addScaledProduct(target, 'conv1d', p, q, 1), /target is \[4, 3\] but conv1d layout with P \[4, 2\], Q \[2, 3\] needs \[3, 4\]/);
    assert.throws(() => addScaledProductSync(target, 'linear', p, randomMatrix(3, 3, rng), 1), /P is \[4, 2\] and Q is \[3, 3\]: inner sizes differ/);
  });

  test('materializeUpdate gives s·(P·Q)ᵀ for conv1d, in × out', async () => {
    const rng = createRng(8);
    const p = randomMatrix(5, 2, rng);
    const q = randomMatrix(2, 3, rng);
    const dense = await materializeUpdate(createTypeScriptBackend(), { form: 'factored', p, q, scale: 2, layout: 'conv1d' });
    const expected = refTranspose(refMatmul(p, q), 5, 3).map((v) => 2 * v);

    assert.deepEqual(dense.shape, [3, 5]);
    assert.ok(maxAbsDiff(dense.data, expected) < 1e-5);
  });

  test('the float64 references (refMatmul, refTranspose) agree with hand-computed values', () => {
    const a = { shape: [2, 3] as [number, number], data: new Float64Array([1, 2, 3, 4, 5, 6]) };
    const b = { shape: [3, 2] as [number, number], data: new Float64Array([7, 8, 9, 10, 11, 12]) };
    assert.deepEqual([...refMatmul(a, b)], [58, 64, 139, 154]);
    assert.deepEqual([...refTranspose(a.data, 2, 3)], [1, 4, 2, 5, 3, 6]);
  });
});
