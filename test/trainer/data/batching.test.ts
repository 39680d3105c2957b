import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { epochBatches, packExamples, padBatch, padBatchTo, padIdFor, splitBatch } from '../../../src/trainer/data/batching.js';
import type { EncodedExample } from '../../../src/trainer/data/encode.js';

function ex(ids: number[], labels: number[] = ids, classLabel = -1): EncodedExample {
  return { inputIds: Int32Array.from(ids), labels: Int32Array.from(labels), classLabel };
}

const num = (a: BigInt64Array): number[] => Array.from(a, Number);

describe('padBatch', () => {
  test('right padding: pad ids, mask 0 and label -100 on pads; lossTokens skip position 0', () => {
    const batch = padBatch([ex([5, 6, 7], [-100, 6, 7]), ex([8, 9])], { seqLen: 4, padId: 0 });

    assert.deepEqual(batch.shape, [2, 4]);
    assert.deepEqual(num(batch.inputIds), [5, 6, 7, 0, 8, 9, 0, 0]);
    assert.deepEqual(Array.from(batch.attentionMask), [1, 1, 1, 0, 1, 1, 0, 0]);
    assert.deepEqual(num(batch.labels), [-100, 6, 7, -100, 8, 9, -100, -100]);
    assert.deepEqual(batch.labelShape, [2, 4]);
    assert.equal(batch.lossTokens, 3);
  });

  test("padTo 'longest' pads to the longest example only", () => {
    const batch = padBatch([ex([5, 6, 7]), ex([8])], { seqLen: 16, padId: 1, padTo: 'longest' });

    assert.deepEqual(batch.shape, [2, 3]);
    assert.deepEqual(num(batch.inputIds), [5, 6, 7, 8, 1, 1]);
  });

  test('classification: one label per row', () => {
    const batch = padBatch([ex([2, 4, 3], [-100, -100, -100], 1), ex([2, 3], [-100, -100], 0)], { seqLen: 4, padId: 0 });

    assert.deepEqual(num(batch.labels), [1, 0]);
    assert.deepEqual(batch.labelShape, [2]);
    assert.equal(batch.lossTokens, 2);
  });

  test('errors: an example longer than seqLen, mixed kinds', () => {
    assert.throws(() => padBatch([ex([1, 2, 3])], { seqLen: 2, padId: 0 }), /3 tokens, more than seqLen 2/);
    assert.throws(() => padBatch([ex([1], [1], 0), ex([1])], { seqLen: 2, padId: 0 }), /mixes classification/);
  });
});

describe('packExamples', () => {
  test('concatenates with eos into full rows; the last row is padded', () => {
    const rows = packExamples([ex([5, 6, 7], [-100, 6, 7]), ex([8, 9])], { seqLen: 4, padId: 0, eosId: 1 });

    assert.equal(rows.length, 2);
    assert.deepEqual([...rows[0].inputIds], [5, 6, 7, 1]);
    assert.deepEqual([...rows[0].labels], [-100, 6, 7, 1]);
    assert.deepEqual([...rows[1].inputIds], [8, 9, 1, 0]);
    assert.deepEqual([...rows[1].labels], [8, 9, 1, -100]);
    assert.deepEqual([...rows[1].attentionMask], [1, 1, 1, 0]);
  });

  test("the eos put after an example is scored only when the example's last token is (a chat ending in an unscored newline)", () => {
    const rows = packExamples([ex([5, 6, 7], [-100, 6, -100]), ex([8, 9])], { seqLen: 8, padId: 0, eosId: 1 });

    assert.deepEqual([...rows[0].inputIds], [5, 6, 7, 1, 8, 9, 1, 0]);
    assert.deepEqual([...rows[0].labels], [-100, 6, -100, -100, 8, 9, 1, -100]);
  });

  test('does not double an eos already there; dropLast drops the partial row', () => {
    const rows = packExamples([ex([5, 1]), ex([6, 7, 1]), ex([8])], { seqLen: 3, padId: 0, eosId: 1, dropLast: true });

    assert.deepEqual(rows.map((r) => [...r.inputIds]), [[5, 1, 6], [7, 1, 8]]);
  });

  test('refuses classification examples', () => {
    assert.throws(() => packExamples([ex([1], [1], 0)], { seqLen: 4, padId: 0, eosId: 1 }), /cannot be packed/);
  });
});

describe('epochBatches', () => {
  const data = Array.from({ length: 10 }, (_, i) => ex([100 + i, 1]));
  const base = { batchSize: 3, seqLen: 4, padId: 0, eosId: 1, seed: 42, epoch: 0 };
  const firstIds = (batches: Iterable<{ inputIds: BigInt64Array; shape: readonly [number, number] }>): number[] => [...batches].flatMap((b) => Array.from({ length: b.shape[0] }, (_, r) => Number(b.inputIds[r * b.shape[1]])));

  test('each epoch is a permutation: every example once; same seed and epoch → same order', () => {
    const order = firstIds(epochBatches(data, base));

    assert.deepEqual([...order].sort((a, b) => a - b), data.map((_, i) => 100 + i));
    assert.deepEqual(firstIds(epochBatches(data, base)), order);
    assert.notDeepEqual(firstIds(epochBatches(data, { ...base, epoch: 1 })), order);
    assert.notDeepEqual(firstIds(epochBatches(data, { ...base, seed: 43 })), order);
  });

  test('batch sizes 3,3,3,1, or 3,3,3 with dropLast; shuffle false keeps the order', () => {
    assert.deepEqual([...epochBatches(data, base)].map((b) => b.shape[0]), [3, 3, 3, 1]);
    assert.deepEqual([...epochBatches(data, { ...base, dropLast: true })].map((b) => b.shape[0]), [3, 3, 3]);
    assert.deepEqual(firstIds(epochBatches(data, { ...base, shuffle: false })), data.map((_, i) => 100 + i));
  });

  test('pack mode: rows of seqLen from the shuffled stream, deterministic', () => {
    const packed = [...epochBatches(data, { ...base, mode: 'pack' })];

    // 10 examples × 2 tokens = 20 tokens → 5 rows of 4 → batches of 3 and 2.
    assert.deepEqual(packed.map((b) => b.shape), [[3, 4], [2, 4]]);
    assert.ok(packed.every((b) => b.attentionMask.every((m) => m === 1)));
    assert.deepEqual(packed, [...epochBatches(data, { ...base, mode: 'pack' })]);
  });

  test('padIdFor: pad, else eos, else 0', () => {
    assert.equal(padIdFor({ pad: 3, eos: 1 }), 3);
    assert.equal(padIdFor({ pad: null, eos: 1 }), 1);
    assert.equal(padIdFor({ pad: null, eos: null }), 0);
  });

  test("splitBatch: row slices of the same width whose loss tokens add up to the batch's; classification keeps one label per row", () => {
    const batch = padBatch([ex([5, 6, 7], [-100, 6, 7]), ex([8, 9]), ex([1, 2, 3]), ex([4])], { seqLen: 4, padId: 0, padTo: 'longest' });

    const parts = splitBatch(batch, 3);

    assert.deepEqual(parts.map((p) => p.shape), [[3, 3], [1, 3]]);
    assert.deepEqual(num(parts[1].inputIds), [4, 0, 0]);
    assert.deepEqual(Array.from(parts[1].attentionMask), [1, 0, 0]);
    assert.deepEqual(parts.map((p) => p.lossTokens), [5, 0]);
    assert.equal(parts[0].lossTokens + parts[1].lossTokens, batch.lossTokens);
    assert.deepEqual(splitBatch(batch, 4), [batch]);
    const classes = splitBatch(padBatch([ex([2, 4], [-100, -100], 1), ex([3], [-100], 0)], { seqLen: 2, padId: 0 }), 1);
    assert.deepEqual(classes.map((p) => [num(p.labels), p.labelShape, p.lossTokens]), [[[1], [1], 1], [[0], [1], 1]]);
    assert.throws(() => splitBatch(batch, 0), /rows must be a positive integer, got 0/);
  });
});

describe('padBatchTo (sessions with fixed shapes)', () => {
  test("language modelling: rows and tokens padded with the pad id, mask 0, label -100; the loss tokens are the batch's", () => {
    const batch = padBatch([ex([5, 6, 7], [-100, 6, 7]), ex([8, 9])], { seqLen: 8, padId: 1, padTo: 'longest' });

    const fixed = padBatchTo(batch, 3, 5, 1);

    assert.deepEqual(fixed.shape, [3, 5]);
    assert.deepEqual(num(fixed.inputIds), [5, 6, 7, 1, 1, 8, 9, 1, 1, 1, 1, 1, 1, 1, 1]);
    assert.deepEqual(Array.from(fixed.attentionMask), [1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(num(fixed.labels), [-100, 6, 7, -100, -100, 8, 9, -100, -100, -100, -100, -100, -100, -100, -100]);
    assert.deepEqual(fixed.labelShape, [3, 5]);
    assert.equal(fixed.lossTokens, batch.lossTokens);
  });

  test('classification: padded rows get label -100; a batch already at the size is returned as is; a larger one is refused', () => {
    const batch = padBatch([ex([2, 4, 3], [-100, -100, -100], 1)], { seqLen: 4, padId: 0, padTo: 'longest' });

    const fixed = padBatchTo(batch, 2, 4, 0);

    assert.deepEqual(num(fixed.labels), [1, -100]);
    assert.deepEqual(fixed.labelShape, [2]);
    assert.deepEqual(num(fixed.inputIds), [2, 4, 3, 0, 0, 0, 0, 0]);
    assert.equal(padBatchTo(fixed, 2, 4, 0), fixed);
    assert.throws(() => padBatchTo(fixed, 1, 4, 0), /padBatchTo: a batch of 2 × 4 does not fit 1 × 4/);
  });
});
