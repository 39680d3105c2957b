// LoRA-SB's graph (graph/nn/lora.ts with `r`): y = x·W_effᵀ + b with W_eff = W0 + s·B·R·A, in both
// weight layouts, against a float64 reference; the gradients of x and R against central differences
// (float64: eps 1e-6, rtol 1e-5); and autodiff asked for R only builds no gradient of A or B.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { grad } from '../../../src/graph/autodiff.js';
import { loraLinear } from '../../../src/graph/nn/lora.js';
import { reduceSum } from '../../../src/graph/ops/reduceSum.js';
import { checkLoraLinear } from './loraCase.js';

describe("loraLinear with LoRA-SB's R (float64)", () => {
  for (const [inDim, outDim] of [[5, 3], [4, 4]] as const) {
    for (const layout of ['outIn', 'inOut'] as const) {
      test(`${layout}, in ${inDim}, out ${outDim}: forward matches W0 + s·B·R·A; gradients of x and R check`, () => checkLoraLinear(inDim, outDim, layout, true));
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
