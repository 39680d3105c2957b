import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeTruncation, truncatedShare } from '../../../src/trainer/data/report.js';
import type { DataReport, TruncationCounts } from '../../../src/trainer/data/report.js';

const none: TruncationCounts = { records: 50, truncated: 0, dropped: 0, tokens: 1000, truncatedTokens: 0 };

describe('describeTruncation', () => {
  test('names the records cut, the tokens dropped and their share, the records skipped, and what to do', () => {
    const report: DataReport = { seqLen: 64, packed: false, train: { records: 500, truncated: 12, dropped: 3, tokens: 15000, truncatedTokens: 1234 }, eval: none };

    assert.equal(describeTruncation(report), '--seq-len 64 cut 12 of 500 training records (1234 of 15000 tokens dropped, 8.2 %); 3 training records had nothing left to score and were skipped; raise --seq-len, or --pack text data');
  });

  test('eval cuts are named too; packed training data only advises --seq-len', () => {
    const report: DataReport = { seqLen: 32, packed: true, train: { ...none, records: 400 }, eval: { records: 50, truncated: 5, dropped: 0, tokens: 2000, truncatedTokens: 100 } };

    assert.equal(describeTruncation(report), '--seq-len 32 cut 5 of 50 eval records (100 of 2000 tokens dropped, 5.0 %); raise --seq-len');
    assert.equal(describeTruncation({ ...report, train: { ...report.train, truncated: 4, truncatedTokens: 40, tokens: 400 } }),
      '--seq-len 32 cut 4 of 400 training records (40 of 400 tokens dropped, 10.0 %) and 5 of 50 eval records (100 of 2000 tokens dropped, 5.0 %); raise --seq-len');
  });

  test('null when nothing was cut, or without a report', () => {
    assert.equal(describeTruncation({ seqLen: 64, packed: false, train: none, eval: none }), null);
    assert.equal(describeTruncation(undefined), null);
    assert.equal(truncatedShare({ ...none, tokens: 0 }), 0);
  });
});
