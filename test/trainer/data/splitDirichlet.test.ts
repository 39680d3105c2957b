// The Dirichlet split (`--split dirichlet`): a partition, deterministic per seed, no client empty,
// skew that grows as α shrinks, shares whose mean and variance match the Dirichlet's, and errors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PromptCompletionRecord } from '../../../src/trainer/data/records.js';
import { splitDirichlet, splitNonIid } from '../../../src/trainer/data/split.js';
import { generateTask } from '../../../src/trainer/data/tasks.js';
import { assertPartition, groupHistogram, groupSkew } from './partition.js';

/** 600 arithmetic records, 100 per family (6 families). */
const records = generateTask('task:arith', { count: 600, seed: 5 }).records as PromptCompletionRecord[];

describe('splitDirichlet', () => {
  test('a partition whose sizes sum to n, the same for the same seed, another for another seed', () => {
    const { parts, draws } = splitDirichlet(records, 5, { seed: 3, alpha: 0.3 });

    assertPartition(records, parts);
    assert.equal(parts.reduce((s, p) => s + p.length, 0), records.length);
    assert.ok(draws >= 1);
    assert.deepEqual(splitDirichlet(records, 5, { seed: 3, alpha: 0.3 }).parts, parts);
    assert.notDeepEqual(splitDirichlet(records, 5, { seed: 4, alpha: 0.3 }).parts, parts);
    // splitNonIid with alpha is the same split (the path `--split dirichlet` takes through the data pipeline).
    assert.deepEqual(splitNonIid(records, 5, { seed: 3, alpha: 0.3 }), parts);
  });

  test('no client is left empty, even where the first draw would leave one empty (redrawn)', () => {
    let redrawn = 0;
    for (let seed = 0; seed < 40; seed++) {
      const { parts, draws } = splitDirichlet(records, 8, { seed, alpha: 0.05 });
      assertPartition(records, parts);
      for (const p of parts) assert.ok(p.length >= 1, `seed ${seed}: sizes ${parts.map((x) => x.length)}`);
      if (draws > 1) redrawn++;
    }
    // With 6 groups over 8 clients at α = 0.05 most first draws leave a client empty: the retry is exercised.
    assert.ok(redrawn > 10, `redrawn ${redrawn} of 40`);
    const { parts } = splitDirichlet(records, 4, { seed: 1, alpha: 0.05, minPerClient: 50 });
    for (const p of parts) assert.ok(p.length >= 50, `sizes ${parts.map((x) => x.length)}`);
  });

  test('skew (mean total variation from the pooled mix, over 30 seeds) grows as α shrinks', () => {
    const skew = (alpha: number): number => {
      let sum = 0;
      for (let seed = 0; seed < 30; seed++) sum += groupSkew(splitDirichlet(records, 4, { seed, alpha }).parts);
      return sum / 30;
    };
    const [s100, s1, s01] = [skew(100), skew(1), skew(0.1)];

    assert.ok(s100 < 0.1, `α = 100: ${s100}`);
    assert.ok(s100 < s1 && s1 < s01, `skew ${s100} < ${s1} < ${s01}`);
    assert.ok(s01 > 0.5, `α = 0.1: ${s01}`);
  });

  test("a client's share of a group has the Dirichlet's mean 1/k and variance (k−1)/(k²(kα+1)) (float64 reference, 10 %)", () => {
    // α = 1, k = 4, 400 items per group: rounding and the non-empty condition are negligible here.
    const big = generateTask('task:arith', { count: 2400, seed: 7 }).records as PromptCompletionRecord[];
    const k = 4;
    const alpha = 1;
    const shares: number[] = [];
    for (let seed = 0; seed < 150; seed++) {
      const hist = groupHistogram(splitDirichlet(big, k, { seed, alpha }).parts);
      for (const family of Object.keys(hist.reduce((a, h) => ({ ...a, ...h }), {}))) {
        const n = hist.reduce((s, h) => s + (h[family] ?? 0), 0);
        for (const h of hist) shares.push((h[family] ?? 0) / n);
      }
    }
    const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
    const variance = shares.reduce((a, v) => a + (v - mean) ** 2, 0) / (shares.length - 1);
    const expected = (k - 1) / (k * k * (k * alpha + 1));

    assert.ok(Math.abs(mean - 1 / k) < 1e-12, `mean ${mean}`); // the shares of a group sum to 1, so the mean is exact
    assert.ok(Math.abs(variance - expected) / expected < 0.1, `variance ${variance}, expected ${expected}`);
  });

  test('groupSkew: 0 for parts mixed like the whole, ½ for two pure halves of two groups', () => {
    const a = { group: 'a' };
    const b = { group: 'b' };

    assert.equal(groupSkew([[a, b], [a, b]]), 0);
    assert.equal(groupSkew([[a, a], [b, b]]), 0.5);
    assert.equal(groupSkew([[a, a, a], [b]]), (0.25 + 0.75) / 2);
  });

  test('bad input: α, too few items for the clients, hopeless draws, records without groups', () => {
    assert.throws(() => splitDirichlet(records, 3, { seed: 1, alpha: 0 }), /splitDirichlet: alpha must be a positive number, got 0/);
    assert.throws(() => splitDirichlet(records, 3, { seed: 1, alpha: Number.NaN }), /alpha must be a positive number, got NaN/);
    assert.throws(() => splitDirichlet(records, 0, { seed: 1, alpha: 1 }), /number of clients must be a positive integer, got 0/);
    assert.throws(() => splitDirichlet(records.slice(0, 2), 3, { seed: 1, alpha: 1 }), /2 items cannot give each of 3 clients at least 1/);
    // Three items of one group at α = 0.001: every draw puts the group (nearly) on one client.
    assert.throws(() => splitDirichlet(records.slice(0, 3).map(() => ({ group: 'g' })), 3, { seed: 1, alpha: 0.001, maxDraws: 20 }),
      /20 Dirichlet\(α = 0\.001\) draws of 3 items in 1 group over 3 clients all left some client with fewer than 1 item .*raise alpha, use fewer clients or more data/);
    assert.throws(() => splitDirichlet([{ text: 'x' }, { text: 'y' }], 2, { seed: 1, alpha: 1 }), /no string "group" \(nor a numeric "label"\)/);
  });
});
