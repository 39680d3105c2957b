/**
 * The float64 check shared by the LoRA and LoRA-SB tests of graph/nn/lora.ts: loraLinear at rank 2,
 * s = 1.5, in either weight layout, against an independent float64 reference
 * y = x·(W0 + s·B·A)ᵀ + b (or W0 + s·B·R·A with LoRA-SB's R), then the gradients of the named
 * inputs against central differences (F64: eps 1e-6, rtol 1e-5).
 */
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { loraLinear } from '../../../src/graph/nn/lora.js';
import { F64, assertClose, gradCheck, randomData, runGraph } from '../gradCheck.js';

/** Reference y = x·W_effᵀ + b with W_eff = W0 + s·B·A, or W0 + s·B·R·A where `r` is given; W0 read in the [out, in] orientation. */
function loraRef(x: ArrayLike<number>, rows: number, w0OutIn: (o: number, i: number) => number, a: ArrayLike<number>, b: ArrayLike<number>, r: ArrayLike<number> | undefined, bias: ArrayLike<number>, s: number, inDim: number, outDim: number,
  rank: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < rows; n++) {
    for (let o = 0; o < outDim; o++) {
      let acc = bias[o];
      for (let i = 0; i < inDim; i++) {
        let delta = 0;
        for (let k = 0; k < rank; k++) {
          if (r === undefined) delta += b[o * rank + k] * a[k * inDim + i];
          else for (let j = 0; j < rank; j++) delta += b[o * rank + k] * r[k * rank + j] * a[j * inDim + i];
        }
        acc += x[n * inDim + i] * (w0OutIn(o, i) + s * delta);
      }
      out.push(acc);
    }
  }
  return out;
}

/**
 * Builds loraLinear on x [batch, seq, in] (fed as [2, 3, in]) with W0, bias, A [2, in], B [out, 2]
 * and, with `withR`, R [2, 2]; checks the output shape, the forward against loraRef
 * (rtol = atol = 1e-12) and the gradients of x and of the trained factors: A and B for LoRA, R for
 * LoRA-SB.
 */
export async function checkLoraLinear(inDim: number, outDim: number, layout: 'outIn' | 'inOut', withR: boolean): Promise<void> {
  const rank = 2;
  const s = 1.5;
  const g = new GraphBuilder();
  const x = g.input('x', 'float64', ['batch', 'seq', inDim]);
  const w0Shape = layout === 'outIn' ? [outDim, inDim] : [inDim, outDim];
  const w0 = g.input('w0', 'float64', w0Shape);
  const bias = g.input('bias', 'float64', [outDim]);
  const a = g.input('lora_A', 'float64', [rank, inDim]);
  const b = g.input('lora_B', 'float64', [outDim, rank]);
  const r = withR ? g.input('lora_R', 'float64', [rank, rank]) : undefined;
  const y = loraLinear(x, w0, bias, layout, r === undefined ? { a, b, scaling: s } : { a, b, r, scaling: s });
  assert.deepEqual(y.shape, ['batch', 'seq', outDim]);
  const feeds = [
    { value: x, data: randomData(x, [2, 3, inDim], 1), dims: [2, 3, inDim] },
    { value: w0, data: randomData(w0, w0Shape, 2), dims: w0Shape },
    { value: bias, data: randomData(bias, [outDim], 3), dims: [outDim] },
    { value: a, data: randomData(a, [rank, inDim], 4), dims: [rank, inDim] },
    { value: b, data: randomData(b, [outDim, rank], 5), dims: [outDim, rank] },
    ...(r === undefined ? [] : [{ value: r, data: randomData(r, [rank, rank], 6), dims: [rank, rank] }]),
  ];
  const w0d = feeds[1].data;
  const w0At = (o: number, i: number): number => (layout === 'outIn' ? w0d[o * inDim + i] : w0d[i * outDim + o]);
  const out = await runGraph(g, feeds, { y });
  const expected = loraRef(feeds[0].data, 6, w0At, feeds[3].data, feeds[4].data, r === undefined ? undefined : feeds[5].data, feeds[2].data, s, inDim, outDim, rank);
  assertClose(out.y.data, expected, 1e-12, 1e-12, r === undefined ? 'loraLinear' : 'loraLinear with R');
  await gradCheck(g, y, feeds, r === undefined ? [x, a, b] : [x, r], F64);
}
