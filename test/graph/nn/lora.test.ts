import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { linear } from '../../../src/graph/nn/linear.js';
import { loraLinear } from '../../../src/graph/nn/lora.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

/** Reference y = x·W_effᵀ + b with W_eff = W0 + s·B·A in the [out, in] layout. */
function loraRef(x: ArrayLike<number>, rows: number, w0OutIn: (o: number, i: number) => number, a: ArrayLike<number>, b: ArrayLike<number>, bias: ArrayLike<number>, s: number, inDim: number, outDim: number, r: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < rows; n++) {
    for (let o = 0; o < outDim; o++) {
      let acc = bias[o];
      for (let i = 0; i < inDim; i++) {
        let ba = 0;
        for (let k = 0; k < r; k++) ba += b[o * r + k] * a[k * inDim + i];
        acc += x[n * inDim + i] * (w0OutIn(o, i) + s * ba);
      }
      out.push(acc);
    }
  }
  return out;
}

describe('linear and loraLinear in both weight layouts (float64)', () => {
  for (const [inDim, outDim] of [[5, 3], [4, 4]] as const) {
    for (const layout of ['outIn', 'inOut'] as const) {
      test(`${layout}, in ${inDim}, out ${outDim}: forward matches W0 + s·B·A, gradients of x, A, B check (eps 1e-6, rtol 1e-5)`, async () => {
        const r = 2;
        const s = 1.5;
        const g = new GraphBuilder();
        const x = g.input('x', 'float64', ['batch', 'seq', inDim]);
        const w0Shape = layout === 'outIn' ? [outDim, inDim] : [inDim, outDim];
        const w0 = g.input('w0', 'float64', w0Shape);
        const bias = g.input('bias', 'float64', [outDim]);
        const a = g.input('lora_A', 'float64', [r, inDim]);
        const b = g.input('lora_B', 'float64', [outDim, r]);
        const y = loraLinear(x, w0, bias, layout, { a, b, scaling: s });
        assert.deepEqual(y.shape, ['batch', 'seq', outDim]);
        const feeds = [
          { value: x, data: randomData(x, [2, 3, inDim], 1), dims: [2, 3, inDim] },
          { value: w0, data: randomData(w0, w0Shape, 2), dims: w0Shape },
          { value: bias, data: randomData(bias, [outDim], 3), dims: [outDim] },
          { value: a, data: randomData(a, [r, inDim], 4), dims: [r, inDim] },
          { value: b, data: randomData(b, [outDim, r], 5), dims: [outDim, r] },
        ];
        const w0d = feeds[1].data;
        const w0At = (o: number, i: number): number => (layout === 'outIn' ? w0d[o * inDim + i] : w0d[i * outDim + o]);
        const out = await runGraph(g, feeds, { y });
        assertClose(out.y.data, loraRef(feeds[0].data, 6, w0At, feeds[3].data, feeds[4].data, feeds[2].data, s, inDim, outDim, r), 1e-12, 1e-12, 'loraLinear');
        await gradCheck(g, y, feeds, [x, a, b], F64);
      });
    }
  }

  test('a weight that does not fit x is a build error naming linear and the layout', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 5]);
    const w = g.input('w', 'float32', [5, 3]);
    assert.throws(() => linear(x, w, undefined, 'outIn'), /linear: x \[2, 5\] has 5 features, weight \[5, 3\] \(outIn\) takes 3/);
    assert.deepEqual(linear(x, w, undefined, 'inOut').shape, [2, 3]);
  });
});
