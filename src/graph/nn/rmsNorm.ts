/** RMSNorm (Llama), composed from primitives. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { add } from '../ops/add.js';
import { checkFloatOperands } from '../ops/common.js';
import { div } from '../ops/div.js';
import { mul } from '../ops/mul.js';
import { reduceMean } from '../ops/reduceMean.js';
import { sqrt } from '../ops/sqrt.js';
import { dimEquals, formatShape } from '../shape.js';

/** `weight · x / √(mean(x², last axis) + ε)`, like HF's LlamaRMSNorm. */
export function rmsNorm(x: Value, weight: Value, epsilon = 1e-6): Value {
  checkFloatOperands('rmsNorm', { x, weight });
  check(weight.rank === 1 && dimEquals(weight.shape[0], x.shape[x.rank - 1]), () => `rmsNorm: weight ${formatShape(weight.shape)} must be [${String(x.shape[x.rank - 1])}] (x ${formatShape(x.shape)})`);
  const inv = div(1, sqrt(add(reduceMean(mul(x, x), -1, true), epsilon)));
  return mul(weight, mul(x, inv));
}
