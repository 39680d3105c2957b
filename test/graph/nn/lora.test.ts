import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../../src/graph/builder.js';
import { linear } from '../../../src/graph/nn/linear.js';
import { checkLoraLinear } from './loraCase.js';

describe('linear and loraLinear in both weight layouts (float64)', () => {
  for (const [inDim, outDim] of [[5, 3], [4, 4]] as const) {
    for (const layout of ['outIn', 'inOut'] as const) {
      test(`${layout}, in ${inDim}, out ${outDim}: forward matches W0 + s·B·A, gradients of x, A, B check (eps 1e-6, rtol 1e-5)`, () => checkLoraLinear(inDim, outDim, layout, false));
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
