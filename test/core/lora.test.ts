import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { baseWeightShape, loraScaling, validateFactors, validateSpec } from '../../src/core/lora.js';
import { createRng, randomMatrix } from '../../src/core/random.js';
import { spec } from './reference.js';

describe('LoRA module spec', () => {
  test('scaling is alpha/r, or alpha/√r with rsLoRA', () => {
    assert.equal(loraScaling(16, 8, false), 2);
    assert.equal(loraScaling(16, 16, true), 4);
    assert.throws(() => loraScaling(16, 0, false), /rank must be a positive integer/);
  });

  test('the stored base shape follows the layout', () => {
    assert.deepEqual(baseWeightShape('linear', 4, 6), [6, 4]);
    assert.deepEqual(baseWeightShape('conv1d', 4, 6), [4, 6]);
  });

  test('valid factors pass; wrong shapes, dtypes and non-finite values name client, module and tensor', () => {
    const s = spec('transformer.h.0.attn.c_attn', 9, 5, 2, 'conv1d');
    const rng = createRng(1);
    const a = randomMatrix(2, 5, rng);
    const b = randomMatrix(9, 2, rng);
    const nan = { shape: b.shape, data: Float32Array.from(b.data) };
    nan.data[7] = NaN;

    validateFactors(s, { a, b }, 0);
    assert.throws(() => validateFactors(s, { a: b, b }, 3), /client 3: module 'transformer\.h\.0\.attn\.c_attn': lora_A has shape \[9, 2\], expected \[2, 5\]/);
    assert.throws(() => validateFactors(s, { a, b: nan }, 1, 'eve'), /client 1 \('eve'\): module 'transformer\.h\.0\.attn\.c_attn': lora_B has a non-finite value NaN at \[3, 1\]/);
    assert.throws(() => validateFactors(s, { a: { shape: [2, 5], data: new Float64Array(10) }, b } as never, 0), /lora_A must be float32/);
  });

  test('malformed specs are refused', () => {
    assert.throws(() => validateSpec(spec('m', 0, 4, 2, 'linear')), /module 'm': outFeatures must be a positive integer, got 0/);
    assert.throws(() => validateSpec({ ...spec('m', 4, 4, 2, 'linear'), layout: 'dense' as never }), /layout must be one of linear, conv1d/);
  });
});
