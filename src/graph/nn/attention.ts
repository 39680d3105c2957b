/** Attention building blocks: the causal mask and the masked softmax that every model's attention is built from. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { checkFloat } from '../ops/common.js';
import { greaterOrEqual } from '../ops/logical.js';
import { arange } from '../ops/range.js';
import { softmax } from '../ops/softmax.js';
import { unsqueeze } from '../ops/unsqueeze.js';
import { where } from '../ops/where.js';
import type { Dim } from '../shape.js';

/** The additive stand-in for −∞: large enough to zero a softmax entry, small enough not to overflow. */
export const MASKED = -1e9;

/** Bool `[seq, seq]`, true where query i may attend key j (j ≤ i). `seq` may be a symbol. */
export function causalMask(like: Value, seq: Dim): Value {
  const r = arange(like, seq);
  return greaterOrEqual(unsqueeze(r, 1), unsqueeze(r, 0));
}

/**
 * Softmax along the last axis with `mask` (bool, broadcastable; true = keep) applied as
 * `where(mask, x, −1e9)`: masked entries get exactly zero probability and zero gradient.
 */
export function maskedSoftmax(x: Value, mask?: Value): Value {
  checkFloat('maskedSoftmax', 'x', x);
  if (mask === undefined) return softmax(x, -1);
  check(mask.dtype === 'bool', () => `maskedSoftmax: mask must be bool, got ${mask.toString()}`);
  return softmax(where(mask, x, MASKED), -1);
}
