import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { causalMask, maskedSoftmax } from '../../../src/graph/nn/attention.js';
import { logSoftmax } from '../../../src/graph/ops/logSoftmax.js';
import { softmax } from '../../../src/graph/ops/softmax.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

function softmaxRows(data: ArrayLike<number>, rows: number, cols: number, keep: (i: number, j: number) => boolean = () => true): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const i = r % cols;
    const xs = Array.from({ length: cols }, (_, j) => (keep(i, j) ? data[r * cols + j] : -Infinity));
    const max = Math.max(...xs);
    const e = xs.map((v) => Math.exp(v - max));
    const s = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((v) => v / s));
  }
  return out;
}

describe('softmax family (float64, gradient check eps 1e-6, rtol 1e-5)', () => {
  test('softmax along the last axis', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3, 4]);
    const y = softmax(x);
    const data = randomData(x, [2, 3, 4], 1, -3, 3);
    const feeds = [{ value: x, data, dims: [2, 3, 4] }];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, softmaxRows(data, 6, 4), 1e-12, 1e-15, 'softmax');
    await gradCheck(g, y, feeds, [x], F64);
  });

  test('softmax along a middle axis', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3, 2]);
    await gradCheck(g, softmax(x, 1), [{ value: x, data: randomData(x, [2, 3, 2], 2), dims: [2, 3, 2] }], [x], F64);
  });

  test('logSoftmax is stable for large logits', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3]);
    const y = logSoftmax(x);
    const data = Float64Array.of(1000, 1001, 1002, -5, 0, 5);
    const out = await runGraph(g, [{ value: x, data, dims: [2, 3] }], { y });
    assertClose(out.y.data, softmaxRows(data, 2, 3).map(Math.log), 1e-12, 1e-12, 'logSoftmax');
    await gradCheck(g, y, [{ value: x, data: randomData(x, [2, 3], 3, -3, 3), dims: [2, 3] }], [x], F64);
  });

  test('causal mask: future keys get probability 0 and gradient 0; seq is symbolic', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 'seq', 'seq']);
    const y = maskedSoftmax(x, causalMask(x, 'seq'));
    const seq = 4;
    const data = randomData(x, [2, seq, seq], 4, -2, 2);
    const feeds = [{ value: x, data, dims: [2, seq, seq] }];
    const out = await runGraph(g, feeds, { y });
    assertClose(out.y.data, softmaxRows(data, 2 * seq, seq, (i, j) => j <= i), 1e-12, 1e-15, 'causal softmax');
    const [dx] = await gradCheck(g, y, feeds, [x], F64);
    for (let b = 0; b < 2; b++) for (let i = 0; i < seq; i++) for (let j = i + 1; j < seq; j++) assert.equal(dx[b * 16 + i * 4 + j], 0);
  });
});
