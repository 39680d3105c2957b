/**
 * Rotary position embeddings in the HF Llama convention: `x·cos + rotate_half(x)·sin`, where
 * rotate_half(x) = concat(−x₂, x₁) for the halves x₁, x₂ of the last axis, and cos/sin repeat
 * the frequencies twice (`emb = cat(freqs, freqs)`).
 */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { add } from '../ops/add.js';
import { checkFloatOperands } from '../ops/common.js';
import { concat } from '../ops/concat.js';
import { mul } from '../ops/mul.js';
import { neg } from '../ops/neg.js';
import { split } from '../ops/split.js';
import { formatShape } from '../shape.js';

/** The HF `rotate_half`: `concat(−x[..., d/2:], x[..., :d/2])`. */
export function rotateHalf(x: Value): Value {
  const d = x.shape[x.rank - 1];
  check(typeof d === 'number' && d % 2 === 0, () => `rotateHalf: last dim of x ${x.toString()} must be an even number`);
  const [x1, x2] = split(x, -1, [d / 2, d / 2]);
  return concat([neg(x2), x1], -1);
}

/**
 * Applies RoPE to x `[..., seq, headDim]` with cos/sin broadcastable to it (typically
 * `[seq, headDim]`, graph inputs or constants: the models' from `ropeTables` in src/model/llama/rope.ts).
 */
export function rope(x: Value, cos: Value, sin: Value): Value {
  checkFloatOperands('rope', { x, cos, sin });
  check(cos.rank <= x.rank && sin.rank <= x.rank, () => `rope: cos ${formatShape(cos.shape)} / sin ${formatShape(sin.shape)} have more dims than x ${formatShape(x.shape)}`);
  return add(mul(x, cos), mul(rotateHalf(x), sin));
}
