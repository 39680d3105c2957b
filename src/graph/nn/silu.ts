/** SiLU (swish), Llama's MLP activation. */
import type { Value } from '../builder.js';
import { checkFloat } from '../ops/common.js';
import { mul } from '../ops/mul.js';
import { sigmoid } from '../ops/sigmoid.js';

/** `x·σ(x)`. */
export function silu(x: Value): Value {
  checkFloat('silu', 'x', x);
  return mul(x, sigmoid(x));
}
