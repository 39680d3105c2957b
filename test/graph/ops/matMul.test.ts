import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { gemm } from '../../../src/graph/ops/gemm.js';
import { matMul } from '../../../src/graph/ops/matMul.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

/** Reference batched matmul with numpy broadcasting of batch dims (both ranks ≥ 2). */
function matMulRef(a: ArrayLike<number>, sa: readonly number[], b: ArrayLike<number>, sb: readonly number[]): number[] {
  const [m, k] = sa.slice(-2);
  const n = sb[sb.length - 1];
  const ba = sa.slice(0, -2);
  const bb = sb.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const pa = [...new Array<number>(rank - ba.length).fill(1), ...ba];
  const pb = [...new Array<number>(rank - bb.length).fill(1), ...bb];
  const batch = pa.map((d, i) => Math.max(d, pb[i]));
  const total = batch.reduce((x, y) => x * y, 1);
  const out: number[] = [];
  for (let t = 0; t < total; t++) {
    let ia = 0;
    let ib = 0;
    let rest = t;
    for (let i = 0; i < rank; i++) {
      const st = batch.slice(i + 1).reduce((x, y) => x * y, 1);
      const c = Math.floor(rest / st);
      rest %= st;
      ia = ia * pa[i] + (pa[i] === 1 ? 0 : c);
      ib = ib * pb[i] + (pb[i] === 1 ? 0 : c);
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let l = 0; l < k; l++) s += a[ia * m * k + i * k + l] * b[ib * k * n + l * n + j];
        out.push(s);
      }
    }
  }
  return out;
}

describe('matMul (float64, gradient check eps 1e-6, rtol 1e-5)', () => {
  const cases: readonly [readonly number[], readonly number[]][] = [
    [[3, 4], [4, 5]],
    [[2, 3, 4], [4, 5]], // x @ W: dW is one Gemm over the flattened batch
    [[3, 4], [2, 4, 5]],
    [[2, 1, 3, 4], [3, 4, 2]], // both batch dims broadcast
  ];
  for (const [sa, sb] of cases) {
    test(`${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`, async () => {
      const g = new GraphBuilder();
      const a = g.input('a', 'float64', sa);
      const b = g.input('b', 'float64', sb);
      const y = matMul(a, b);
      const da = randomData(a, sa, 1);
      const db = randomData(b, sb, 2);
      const feeds = [{ value: a, data: da, dims: sa }, { value: b, data: db, dims: sb }];
      const out = await runGraph(g, feeds, { y });
      assertClose(out.y.data, matMulRef(da, sa, db, sb), 1e-12, 1e-12, 'matMul');
      assert.deepEqual(out.y.dims, y.shape);
      await gradCheck(g, y, feeds, [a, b], F64);
    });
  }

  test('a frozen right operand gets no gradient nodes', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float64', [2, 3, 4]);
    const w0 = g.input('w0', 'float64', [4, 5]);
    const y = matMul(x, w0);
    const before = g.nodes.length;
    await gradCheck(g, y, [{ value: x, data: randomData(x, [2, 3, 4], 3), dims: [2, 3, 4] }, { value: w0, data: randomData(w0, [4, 5], 4), dims: [4, 5] }], [x], F64);
    const added = g.nodes.slice(before);
    assert.equal(added.filter((n) => n.op === 'Gemm').length, 0, 'no dW Gemm for a frozen weight');
  });
});

describe('gemm (float64, gradient check eps 1e-6, rtol 1e-5)', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      test(`transA=${transA} transB=${transB}, alpha 0.7, beta 1.3, C broadcast [1, n]`, async () => {
        const [m, k, n] = [3, 4, 2];
        const g = new GraphBuilder();
        const sa = transA ? [k, m] : [m, k];
        const sb = transB ? [n, k] : [k, n];
        const a = g.input('a', 'float64', sa);
        const b = g.input('b', 'float64', sb);
        const c = g.input('c', 'float64', [1, n]);
        const y = gemm(a, b, c, { alpha: 0.7, beta: 1.3, transA, transB });
        const da = randomData(a, sa, 1);
        const db = randomData(b, sb, 2);
        const dc = randomData(c, [1, n], 3);
        const feeds = [{ value: a, data: da, dims: sa }, { value: b, data: db, dims: sb }, { value: c, data: dc, dims: [1, n] }];
        const ref: number[] = [];
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let l = 0; l < k; l++) s += (transA ? da[l * m + i] : da[i * k + l]) * (transB ? db[j * k + l] : db[l * n + j]);
            // ONNX float attributes are float32, also in float64 graphs.
            ref.push(Math.fround(0.7) * s + Math.fround(1.3) * dc[j]);
          }
        }
        const out = await runGraph(g, feeds, { y });
        assertClose(out.y.data, ref, 1e-12, 1e-12, 'gemm');
        await gradCheck(g, y, feeds, [a, b, c], F64);
      });
    }
  }
});
