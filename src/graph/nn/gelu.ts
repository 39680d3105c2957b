/**
 * GELU in its two usual forms, composed from primitives so that gradients are exact:
 * the tanh approximation (GPT-2's `gelu_new`) and the exact erf form (BERT's `gelu`).
 * onnxruntime's graph optimizer fuses both patterns back into one kernel for inference.
 */
import type { Value } from '../builder.js';
import { add } from '../ops/add.js';
import { checkFloat } from '../ops/common.js';
import { erf } from '../ops/erf.js';
import { mul } from '../ops/mul.js';
import { tanh } from '../ops/tanh.js';

/** `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`. */
export function geluTanh(x: Value): Value {
  checkFloat('geluTanh', 'x', x);
  const cube = mul(mul(x, x), x);
  const inner = mul(add(x, mul(cube, 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(tanh(inner), 1));
}

/**
 * `0.5·x·(1 + erf(x/√2))`. onnxruntime's CPU provider has no float64 Erf, so in float64 graphs
 * this runs only on providers that have one.
 */
export function geluErf(x: Value): Value {
  checkFloat('geluErf', 'x', x);
  return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
}
