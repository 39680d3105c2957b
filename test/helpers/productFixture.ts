// Random operands of the fused update W += s·P·Q, shared by the kernel tests.
import { createRng, randomMatrix } from '../../src/core/random.js';
import type { Layout } from '../../src/core/lora.js';
import type { Matrix } from '../../src/core/tensor.js';

/** P (out × inner), Q (inner × in) and a base W in the stored layout (out × in linear, in × out conv1d). */
export function productFixture(layout: Layout, out: number, inF: number, inner: number, seed: number): { p: Matrix<Float32Array>; q: Matrix<Float32Array>; w: Matrix<Float32Array> } {
  const rng = createRng(seed);
  const p = randomMatrix(out, inner, rng, 0.5);
  const q = randomMatrix(inner, inF, rng, 0.5);
  const w = layout === 'linear' ? randomMatrix(out, inF, rng) : randomMatrix(inF, out, rng);
  return { p, q, w };
}
