/**
 * Dense layers in both weight layouts: PyTorch `nn.Linear` stores W as `[out, in]` ('outIn'),
 * GPT-2's `Conv1D` as `[in, out]` ('inOut', PEFT's fan_in_fan_out). Batched x is flattened to a
 * matrix so every product is one Gemm (the transpose is a Gemm flag, never a Transpose node).
 */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { checkRank } from '../ops/common.js';
import { gemm } from '../ops/gemm.js';
import { reshape } from '../ops/reshape.js';
import { dimEquals, formatShape } from '../shape.js';

export type WeightLayout = 'outIn' | 'inOut';

/** `x·Wᵀ + b` ('outIn', W `[out, in]`) or `x·W + b` ('inOut', W `[in, out]`) over the last axis of x. */
export function linear(x: Value, weight: Value, bias?: Value, layout: WeightLayout = 'outIn'): Value {
  checkRank('linear', 'x', x, 1, true);
  checkRank('linear', 'weight', weight, 2);
  const [inDim, outDim] = layout === 'outIn' ? [weight.shape[1], weight.shape[0]] : weight.shape;
  const xIn = x.shape[x.rank - 1];
  check(dimEquals(xIn, inDim), () => `linear: x ${formatShape(x.shape)} has ${String(xIn)} features, weight ${formatShape(weight.shape)} (${layout}) takes ${String(inDim)}`);
  if (bias !== undefined) check(bias.rank === 1 && dimEquals(bias.shape[0], outDim), () => `linear: bias ${formatShape(bias.shape)} must be [${String(outDim)}]`);
  const flat = x.rank === 2 ? x : reshape(x, [-1, xIn]);
  const y = gemm(flat, weight, bias, { transB: layout === 'outIn' });
  return x.rank === 2 ? y : reshape(y, [...x.shape.slice(0, -1), outDim]);
}
