import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { weightedAverage } from '../../src/core/average.js';
import { matrix } from '../helpers/matrix.js';

describe('weightedAverage', () => {
  test('Σ w_i M_i with one rounding to float32', () => {
    const m1 = matrix(new Float32Array([1, 2, 3, 4]), 2, 2);
    const m2 = matrix(new Float32Array([5, 6, 7, 8]), 2, 2);
    const avg = weightedAverage([m1, m2], [0.25, 0.75]);
    assert.deepEqual([...avg.data], [4, 5, 6, 7]);
    assert.ok(avg.data instanceof Float32Array);
  });

  test('mismatched shapes are named', () => {
    assert.throws(
      () => weightedAverage([matrix(new Float32Array(4), 2, 2), matrix(new Float32Array(6), 2, 3)], [0.5, 0.5], 'avg of lora_A'),
      /avg of lora_A: matrix 1 has shape \[2, 3\], matrix 0 has \[2, 2\]/,
    );
  });
});
