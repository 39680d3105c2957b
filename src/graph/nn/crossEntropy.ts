/** Token-level cross-entropy with an ignore index, mean over the tokens that count. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { cast } from '../ops/cast.js';
import { checkFloat, checkIndex } from '../ops/common.js';
import { div } from '../ops/div.js';
import { gatherElements } from '../ops/gatherElements.js';
import { equal, logicalNot } from '../ops/logical.js';
import { logSoftmax } from '../ops/logSoftmax.js';
import { maximum } from '../ops/maximum.js';
import { mul } from '../ops/mul.js';
import { neg } from '../ops/neg.js';
import { reduceSum } from '../ops/reduceSum.js';
import { squeeze } from '../ops/squeeze.js';
import { unsqueeze } from '../ops/unsqueeze.js';
import { where } from '../ops/where.js';
import { formatShape, shapeEquals } from '../shape.js';

export interface CrossEntropyOptions {
  /** Labels equal to this are skipped (default -100, as in PyTorch and HF). */
  ignoreIndex?: number;
}

/**
 * `−mean log softmax(logits)[label]` over the labels ≠ ignoreIndex. logits `[..., C]`, labels
 * `[...]` (int64). The log-softmax is onnxruntime's stable LogSoftmax. If every label is
 * ignored the loss is 0 (the count is clamped to 1), not NaN.
 */
export function crossEntropy(logits: Value, labels: Value, options: CrossEntropyOptions = {}): Value {
  checkFloat('crossEntropy', 'logits', logits);
  checkIndex('crossEntropy', 'labels', labels);
  check(shapeEquals(labels.shape, logits.shape.slice(0, -1)), () => `crossEntropy: labels ${formatShape(labels.shape)} must match logits ${formatShape(logits.shape)} without the class axis`);
  const valid = logicalNot(equal(labels, options.ignoreIndex ?? -100));
  const safe = where(valid, labels, 0);
  const picked = squeeze(gatherElements(logSoftmax(logits, -1), unsqueeze(safe, labels.rank), -1), -1);
  const weight = cast(valid, logits.dtype);
  const count = maximum(reduceSum(weight), 1);
  return neg(div(reduceSum(mul(picked, weight)), count));
}
