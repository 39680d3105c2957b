// LoRA-SB's graph (graph/nn/lora.ts with `r`): y = x·W_effᵀ + b with W_eff = W0 + s·B·R·A, in both
// weight layouts, against a float64 reference; the gradients of x and R against central differences
// (float64: eps 1e-6, rtol 1e-5); and autodiff asked for R only builds no gradient of A or B.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { grad } from '../../../src/graph/autodiff.js';
import { loraLinear } from '../../../src/graph/nn/lora.js';
import { reduceSum } from '../../../src/graph/ops/reduceSum.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

/** Reference y = x·(W0 + s·B·R·A)ᵀ + b, with W0 read in the [out, in] orientation. */
function sbRef(x: ArrayLike<number>, rows: number, w0OutIn: (o: number, i: number) => number, a: ArrayLike<number>, b: ArrayLike<number>, r: ArrayLike<number>, bias: ArrayLike<number>, s: number, inDim: number, outDim: number,
  rank: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < rows; n++) {
    for (let o = 0; o < outDim; o++) {
      let acc = bias[o];
      for (let i = 0; i < inDim; i++) {
        let bra = 0;
        for (let k = 0; k < rank; k++) for (let j = 0; j < rank; j++) bra += b[o * rank + k] * r[k * rank + j] * a[j * inDim + i];
        acc += x[n * inDim + i] * (w0OutIn(o, i) + s * bra);
      }
      out.push(acc);
    }
  }
  return out;
}

describe("loraLinear with LoRA-SB's R (float64)", () => {
  for (const [inDim, outDim] of [[5, 3], [4, 4]] as const) {
    for (const layout of ['outIn', 'inOut'] as const) {
      test(`${layout}, in ${inDim}, out ${outDim}: forward matches W0 + s·B·R·A; gradients of x and R check`, async () => {
        const rank = 2;
        const s = 1.5;
        const g = new GraphBuilder();
        const x = g.input('x', 'float64', ['batch', 'seq', inDim]);
        const w0Shape = layout === 'outIn' ? [outDim, inDim] : [inDim, outDim];
        const w0 = g.input('w0', 'float64', w0Shape);
        const bias = g.input('bias', 'float64', [outDim]);
        const a = g.input('lora_A', 'float64', [rank, inDim]);
        const b = g.input('lora_B', 'float64', [outDim, rank]);
        const r = g.input('lora_R', 'float64', [rank, rank]);
        const y = loraLinear(x, w0, bias, layout, { a, b, r, scaling: s });
        assert.deepEqual(y.shape, ['batch', 'seq', outDim]);
        const feeds = [
          { value: x, data: randomData(x, [2, 3, inDim], 1), dims: [2, 3, inDim] },
          { value: w0, data: randomData(w0, w0Shape, 2), dims: w0Shape },
          { value: bias, data: randomData(bias, [outDim], 3), dims: [outDim] },
          { value: a, data: randomData(a, [rank, inDim], 4), dims: [rank, inDim] },
          { value: b, data: randomData(b, [outDim, rank], 5), dims: [outDim, rank] },
          { value: r, data: randomData(r, [rank, rank], 6), dims: [rank, rank] },
        ];
        const w0d = feeds[1].data;
        const w0At = (o: number, i: number): number => (layout === 'outIn' ? w0d[o * inDim + i] : w0d[i * outDim + o]);
        const out = await runGraph(g, feeds, { y });
        assertClose(out.y.data, sbRef(feeds[0].data, 6, w0At, feeds[3].data, feeds[4].data, feeds[5].data, feeds[2].data, s, inDim, outDim, rank), 1e-12, 1e-12, 'loraLinear with R');
        await gradCheck(g, y, feeds, [x, r], F64);
      });
    }
  }

  test('the gradient of R alone: no backward node produces a gradient of the frozen A or B', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [6, 5]);
    const w0 = g.input('w0', 'float32', [3, 5]);
    const a = g.input('lora_A', 'float32', [2, 5]);
    const b = g.input('lora_B', 'float32', [3, 2]);
    const r = g.input('lora_R', 'float32', [2, 2]);
    const loss = reduceSum(loraLinear(x, w0, undefined, 'outIn', { a, b, r, scaling: 2 }));
    const before = g.nodes.length;
    const [dr] = grad(loss, [r]);
    assert.deepEqual(dr.shape, [2, 2]);
    const backward = g.nodes.slice(before).flatMap((n) => n.outputs);
    // A's gradient would be [2, 5] (= x's feature width 5 at rank 2), B's [3, 2]; W0's [3, 5].
    for (const shape of [[2, 5], [3, 2], [3, 5]]) {
      assert.ok(!backward.some((v) => v.shape.length === 2 && v.shape[0] === shape[0] && v.shape[1] === shape[1]), `a backward value of shape [${shape.join(', ')}]`);
    }
  });

  test('an R that is not r × r is a build error naming loraLinear and the shapes', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 5]);
    const w0 = g.input('w0', 'float32', [3, 5]);
    const a = g.input('lora_A', 'float32', [2, 5]);
    const b = g.input('lora_B', 'float32', [3, 2]);
    const r = g.input('lora_R', 'float32', [2, 3]);
    assert.throws(() => loraLinear(x, w0, undefined, 'outIn', { a, b, r, scaling: 1 }), /loraLinear: R \[2, 3\] must be \[r, r\] with r = 2/);
  });
});
