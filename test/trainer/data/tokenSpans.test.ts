import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { commonPrefixLength, tokenMaskOfSpans } from '../../../src/trainer/data/tokenSpans.js';
import { smallBpeTokenizer } from './fixtures.js';

const tok = smallBpeTokenizer();
const encode = (text: string): number[] => tok.encode(text);

/** The text of the masked tokens, one string per run. */
function maskedRuns(text: string, spans: Array<{ start: number; end: number }>): string[] {
  const ids = encode(text);
  const mask = tokenMaskOfSpans(text, ids, spans, encode);
  const runs: number[][] = [];
  mask.forEach((m, t) => {
    if (!m) return;
    if (t === 0 || !mask[t - 1]) runs.push([]);
    runs[runs.length - 1].push(ids[t]);
  });
  return runs.map((r) => tok.decode(r));
}

describe('tokenMaskOfSpans', () => {
  test('spans on token boundaries select exactly their tokens', () => {
    const text = 'Q: Tom has apples.<|endoftext|>A: pens<|endoftext|>';
    const answer = text.indexOf('A:');

    assert.deepEqual(maskedRuns(text, [{ start: 0, end: answer }, { start: answer + 2, end: text.length }]), ['Q: Tom has apples.<|endoftext|>', ' pens<|endoftext|>']);
  });

  test('a token holding characters on both sides of a boundary belongs to the span (at its start and at its end)', () => {
    const text = 'Tom has apples and pens';

    // " apples" straddles position 8 ("Tom has |apples"): it starts the span; " and" straddles its end.
    assert.deepEqual(maskedRuns(text, [{ start: 8, end: 16 }]), [' apples and']);
  });

  test('empty spans select nothing; a span to the end of the text reaches the last token', () => {
    const text = 'Tom has pens';

    assert.deepEqual(maskedRuns(text, [{ start: 3, end: 3 }]), []);
    assert.deepEqual(maskedRuns(text, [{ start: 7, end: text.length }]), [' pens']);
  });

  test('commonPrefixLength', () => {
    assert.equal(commonPrefixLength([1, 2, 3], [1, 2, 4, 5]), 2);
    assert.equal(commonPrefixLength([], [1]), 0);
    assert.equal(commonPrefixLength([1, 2], [1, 2]), 2);
  });
});
