/**
 * A LoRA-adapted linear layer (PEFT conventions): `y = base(x) + s·(dropout(x)·Aᵀ)·Bᵀ` with A
 * `[r, in]`, B `[out, r]` and s = alpha/r (or alpha/√r for rsLoRA). A and B keep the PEFT layout
 * whatever the base weight's layout; the scaling multiplies the rank-r intermediate (cheapest).
 * LoRA-SB puts a trained r × r R between them: `y = base(x) + s·((dropout(x)·Aᵀ)·Rᵀ)·Bᵀ`.
 */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { add } from '../ops/add.js';
import { mul } from '../ops/mul.js';
import { dimEquals, formatShape } from '../shape.js';
import { dropout, type DropoutOptions } from './dropout.js';
import { linear, type WeightLayout } from './linear.js';

export interface LoraAdapter {
  /** `[r, in]`. */
  a: Value;
  /** `[out, r]`. */
  b: Value;
  /** alpha / r (alpha / √r for rsLoRA). */
  scaling: number;
  /** LoRA dropout on the adapter's input only (PEFT's lora_dropout). */
  dropout?: DropoutOptions;
  /** LoRA-SB: `[r, r]` between A and B, `y += s·((x·Aᵀ)·Rᵀ)·Bᵀ` (the update is s·B·R·A). */
  r?: Value;
}

/** The frozen layer `x → x·W0ᵀ + bias` (or `x·W0 + bias` for 'inOut') plus the LoRA path. */
export function loraLinear(x: Value, w0: Value, bias: Value | undefined, layout: WeightLayout, adapter: LoraAdapter): Value {
  const { a, b } = adapter;
  const outDim = layout === 'outIn' ? w0.shape[0] : w0.shape[1];
  check(a.rank === 2 && b.rank === 2 && dimEquals(a.shape[0], b.shape[1]) && dimEquals(b.shape[0], outDim),
    () => `loraLinear: A ${formatShape(a.shape)} and B ${formatShape(b.shape)} do not fit W0 ${formatShape(w0.shape)} (${layout}); expected A [r, in], B [out, r]`);
  const base = linear(x, w0, bias, layout);
  const input = adapter.dropout === undefined ? x : dropout(x, adapter.dropout);
  const r = adapter.r;
  check(r === undefined || (r.rank === 2 && dimEquals(r.shape[0], a.shape[0]) && dimEquals(r.shape[1], a.shape[0])),
    () => `loraLinear: R ${formatShape(r!.shape)} must be [r, r] with r = ${String(a.shape[0])} (the rank of A ${formatShape(a.shape)})`);
  const xa = linear(input, a);
  const low = mul(r === undefined ? xa : linear(xa, r), adapter.scaling);
  return add(base, linear(low, b));
}
