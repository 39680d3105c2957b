import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { broadcastShapes, canonicalDim, dimEquals, divDims, mulDims, numel } from '../../src/graph/shape.js';

describe('symbolic shapes', () => {
  test('products are canonical: coefficient first, symbols sorted', () => {
    assert.equal(canonicalDim('seq*batch'), 'batch*seq');
    assert.equal(mulDims('seq', mulDims(12, 'batch')), '12*batch*seq');
    assert.equal(numel(['batch', 'seq', 768]), '768*batch*seq');
    assert.equal(numel([2, 3]), 6);
    assert.ok(dimEquals('batch*seq', 'seq*batch'));
  });

  test('division cancels symbols and coefficients, or reports that it cannot', () => {
    assert.equal(divDims('768*batch*seq', 768), 'batch*seq');
    assert.equal(divDims('768*batch*seq', '64*seq'), '12*batch');
    assert.equal(divDims('batch*seq', 'seq*batch'), 1);
    assert.equal(divDims('batch', 'seq'), undefined);
    assert.equal(divDims(10, 4), undefined);
  });

  test('broadcasting: equal dims, literal 1s and rank extension', () => {
    assert.deepEqual(broadcastShapes('add', [{ name: 'a', shape: ['batch', 1, 4] }, { name: 'b', shape: [3, 1] }]), ['batch', 3, 4]);
    assert.deepEqual(broadcastShapes('add', [{ name: 'a', shape: ['seq', 'seq'] }, { name: 'b', shape: [1, 'seq'] }]), ['seq', 'seq']);
  });

  test('a symbol never broadcasts against another symbol or a number other than 1', () => {
    assert.throws(() => broadcastShapes('add', [{ name: 'a', shape: ['batch', 4] }, { name: 'b', shape: [5, 4] }]), /add: b \[5, 4\] does not broadcast with a \[batch, 4\] on axis -2 \(5 vs batch\)/);
    assert.throws(() => broadcastShapes('mul', [{ name: 'a', shape: ['batch'] }, { name: 'b', shape: ['seq'] }]), /mul: b \[seq\]/);
  });
});
