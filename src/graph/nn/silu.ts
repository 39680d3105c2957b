/** SiLU (swish), Llama's MLP activation. */
import type { Value } from '../builder.js';
import { add } from '../ops/add.js';
import { checkFloat } from '../ops/common.js';
import { div } from '../ops/div.js';
import { exp } from '../ops/exp.js';
import { mul } from '../ops/mul.js';
import { neg } from '../ops/neg.js';
import { sigmoid } from '../ops/sigmoid.js';

/**
 * `x·σ(x)`. In float32 this is the `x * Sigmoid(x)` pattern that onnxruntime fuses into its fast
 * QuickGelu kernel. That fusion ignores the dtype and the kernel is float32-only, so a float64
 * graph with the pattern fails to load; float64 uses the equal form `x / (1 + e⁻ˣ)` instead.
 */
export function silu(x: Value): Value {
  checkFloat('silu', 'x', x);
  if (x.dtype === 'float32') return mul(x, sigmoid(x));
  return div(x, add(exp(neg(x)), 1));
}
