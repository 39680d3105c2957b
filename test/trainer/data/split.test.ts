import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PromptCompletionRecord } from '../../../src/trainer/data/records.js';
import { splitIid, splitNonIid, splitTrainEval } from '../../../src/trainer/data/split.js';
import { generateTask } from '../../../src/trainer/data/tasks.js';
import { assertPartition, groupHistogram } from './partition.js';

/** 600 arithmetic records, 100 per family; families sorted: add count max mod mul sub. */
const records = generateTask('task:arith', { count: 600, seed: 5 }).records as PromptCompletionRecord[];
const FAMILIES = ['add', 'count', 'max', 'mod', 'mul', 'sub'];

describe('splitIid', () => {
  test('a partition with sizes within one, deterministic by seed', () => {
    const parts = splitIid(records, 7, { seed: 1 });

    assertPartition(records, parts);
    const sizes = parts.map((p) => p.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `sizes ${sizes}`);
    assert.deepEqual(splitIid(records, 7, { seed: 1 }), parts);
    assert.notDeepEqual(splitIid(records, 7, { seed: 2 }), parts);
  });
});

describe('splitNonIid', () => {
  test('dominance 1, k = #families: each client holds exactly its own family', () => {
    const parts = splitNonIid(records, 6, { seed: 3, dominance: 1 });

    assertPartition(records, parts);
    assert.deepEqual(groupHistogram(parts), FAMILIES.map((f) => ({ [f]: 100 })));
  });

  test('dominance 0.8, k = 3 < 6 families: client j owns families j and j+3 (80 each), 10 of every other family', () => {
    const parts = splitNonIid(records, 3, { seed: 3, dominance: 0.8 });

    assertPartition(records, parts);
    const expected = [0, 1, 2].map((c) => Object.fromEntries(FAMILIES.map((f, j) => [f, j % 3 === c ? 80 : 10])));
    assert.deepEqual(groupHistogram(parts), expected);
  });

  test('dominance 0.8, k = 12 > 6 families: clients j and j+6 share family j (40 each), 2 of each other family', () => {
    const parts = splitNonIid(records, 12, { seed: 3 });

    assertPartition(records, parts);
    const hist = groupHistogram(parts);
    for (let c = 0; c < 12; c++) {
      for (const [j, f] of FAMILIES.entries()) assert.equal(hist[c][f], j === c % 6 ? 40 : 2, `client ${c} family ${f}`);
    }
  });

  test('Dirichlet: small alpha concentrates each family on one client, large alpha spreads it evenly', () => {
    const skewed = splitNonIid(records, 4, { seed: 9, alpha: 0.05 });
    const even = splitNonIid(records, 4, { seed: 9, alpha: 1000 });

    assertPartition(records, skewed);
    assertPartition(records, even);
    const share = (parts: PromptCompletionRecord[][], f: string): number[] => groupHistogram(parts).map((h) => h[f] ?? 0);
    const topShares = FAMILIES.map((f) => Math.max(...share(skewed, f)) / 100);
    assert.ok(topShares.reduce((s, x) => s + x, 0) / FAMILIES.length > 0.8, `top shares ${topShares}`);
    for (const f of FAMILIES) for (const n of share(even, f)) assert.ok(Math.abs(n - 25) <= 5, `${f}: ${share(even, f)}`);
    assert.deepEqual(splitNonIid(records, 4, { seed: 9, alpha: 0.05 }), skewed);
  });

  test('groupOf picks another grouping; bad options are named', () => {
    const parts = splitNonIid(records, 2, { seed: 1, dominance: 1, groupOf: (r) => (r.completion.length > 2 ? 'long' : 'short') });

    assert.ok(parts[0].every((r) => r.completion.length > 2));
    assert.ok(parts[1].every((r) => r.completion.length <= 2));
    assert.throws(() => splitNonIid(records, 0, { seed: 1 }), /number of clients must be a positive integer, got 0/);
    assert.throws(() => splitNonIid(records, 2, { seed: 1, alpha: 0 }), /alpha must be a positive number/);
    assert.throws(() => splitNonIid([{ text: 'x' }], 2, { seed: 1 }), /no string "group"/);
  });
});

describe('splitTrainEval', () => {
  test('round(fraction·n) to eval, disjoint, deterministic', () => {
    const { train, eval: evalPart } = splitTrainEval(records, 0.15, 4);

    assert.equal(evalPart.length, 90);
    assertPartition(records, [train, evalPart]);
    assert.deepEqual(splitTrainEval(records, 0.15, 4).eval, evalPart);
  });
});
