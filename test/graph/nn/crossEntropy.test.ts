import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { crossEntropy } from '../../../src/graph/nn/crossEntropy.js';
import { F64, gradCheck, randomData, runGraph } from '../gradCheck.js';

function crossEntropyRef(logits: ArrayLike<number>, labels: readonly number[], classes: number, ignore: number): number {
  let total = 0;
  let count = 0;
  labels.forEach((label, r) => {
    if (label === ignore) return;
    const row = Array.from({ length: classes }, (_, j) => logits[r * classes + j]);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    total += lse - row[label];
    count++;
  });
  return count === 0 ? 0 : total / count;
}

describe('crossEntropy with ignore index (float64, gradient check eps 1e-6, rtol 1e-5)', () => {
  test('mean over non-ignored tokens; ignored rows get zero gradient', async () => {
    const g = new GraphBuilder();
    const logits = g.input('logits', 'float64', ['batch', 'seq', 5]);
    const labels = g.input('labels', 'int64', ['batch', 'seq']);
    const loss = crossEntropy(logits, labels);
    assert.deepEqual(loss.shape, []);
    const labelData = [2, -100, 4, 0, -100, 1];
    const data = randomData(logits, [2, 3, 5], 1, -3, 3);
    const feeds = [
      { value: logits, data, dims: [2, 3, 5] },
      { value: labels, data: BigInt64Array.from(labelData, BigInt), dims: [2, 3] },
    ];
    const out = await runGraph(g, feeds, { loss });
    assert.ok(Math.abs(out.loss.data[0] - crossEntropyRef(data, labelData, 5, -100)) < 1e-12, `loss ${out.loss.data[0]}`);
    const [d] = await gradCheck(g, loss, feeds, [logits], F64);
    for (const r of [1, 4]) assert.deepEqual(d.slice(r * 5, r * 5 + 5), [0, 0, 0, 0, 0], `ignored row ${r}`);
    // Each counted row's gradient is (softmax − onehot)/count: it sums to zero.
    const rowSum = d.slice(0, 5).reduce((a, v) => a + v, 0);
    assert.ok(Math.abs(rowSum) < 1e-12);
  });

  test('large logits stay finite; all-ignored batch gives 0, not NaN', async () => {
    const g = new GraphBuilder();
    const logits = g.input('logits', 'float64', [2, 3]);
    const labels = g.input('labels', 'int64', [2]);
    const loss = crossEntropy(logits, labels, { ignoreIndex: -1 });
    const data = Float64Array.of(1000, -1000, 0, 0, 0, 700);
    const run = (ls: number[]): ReturnType<typeof runGraph> =>
      runGraph(g, [
        { value: logits, data, dims: [2, 3] },
        { value: labels, data: BigInt64Array.from(ls, BigInt), dims: [2] },
      ], { loss });
    const some = await run([1, 2]);
    assert.ok(Math.abs(some.loss.data[0] - crossEntropyRef(data, [1, 2], 3, -1)) < 1e-9);
    const none = await run([-1, -1]);
    assert.ok(none.loss.data[0] === 0, `loss ${none.loss.data[0]}`);
  });

  test('labels that do not match the logits are a build error naming the op', () => {
    const g = new GraphBuilder();
    const logits = g.input('logits', 'float32', [2, 3, 5]);
    const labels = g.input('labels', 'int64', [2, 4]);
    assert.throws(() => crossEntropy(logits, labels), /crossEntropy: labels \[2, 4\] must match logits \[2, 3, 5\]/);
  });
});
