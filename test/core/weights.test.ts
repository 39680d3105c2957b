import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { exampleWeights, normalizeWeights, resolveWeights, uniformWeights } from '../../src/core/weights.js';

describe('client weights', () => {
  test('uniform weights are 1/k', () => {
    assert.deepEqual([...uniformWeights(4)], [0.25, 0.25, 0.25, 0.25]);
  });

  test('example counts and explicit weights are normalised to sum 1', () => {
    const byExamples = exampleWeights([10, 30, 0, 60]);
    const explicit = normalizeWeights([2, 6]);

    assert.deepEqual([...byExamples], [0.1, 0.3, 0, 0.6]);
    assert.deepEqual([...explicit], [0.25, 0.75]);
  });

  test('resolveWeights picks the field of each mode', () => {
    const clients = [{ numExamples: 1, weight: 3 }, { numExamples: 3, weight: 1 }];
    assert.deepEqual([...resolveWeights('uniform', clients)], [0.5, 0.5]);
    assert.deepEqual([...resolveWeights('examples', clients)], [0.25, 0.75]);
    assert.deepEqual([...resolveWeights('explicit', clients)], [0.75, 0.25]);
  });

  test('negative, NaN, infinite, all-zero and missing weights are refused with the client named', () => {
    assert.throws(() => normalizeWeights([1, -0.5]), /client 1 has a negative weight -0.5/);
    assert.throws(() => normalizeWeights([NaN, 1]), /client 0 has a non-finite weight NaN/);
    assert.throws(() => normalizeWeights([1, Infinity]), /client 1 has a non-finite weight Infinity/);
    assert.throws(() => normalizeWeights([0, 0, 0]), /all 3 weights are zero/);
    assert.throws(() => normalizeWeights([]), /no clients/);
    assert.throws(() => exampleWeights([3, 2.5]), /client 1 reports 2.5 examples/);
    assert.throws(() => resolveWeights('examples', [{ numExamples: 2 }, {}]), /client 1 did not report numExamples/);
    assert.throws(() => resolveWeights('explicit', [{}]), /client 0 has no weight/);
  });
});
