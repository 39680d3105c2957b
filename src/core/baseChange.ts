/**
 * A change to a frozen base weight W0, the one form every producer and consumer shares: strategies
 * return it (`ModuleAggregate.baseUpdate`), the coordinator persists and sends it (a run's steps,
 * the wire's residual entries), and the coordinator, the clients and `fedex export` apply it with
 * `applyBaseChange`, so both ends of a federation hold the same bits. Either form is written in the
 * `linear` orientation (out × in):
 *
 * - factored: W0 += scale·P·Q (P out × k, Q k × in), when (out + in)·k < out·in;
 * - dense:    W0 += scale·D  (D out × in).
 *
 * A `conv1d` weight (GPT-2's Conv1D, stored in × out) receives the transpose.
 */
import type { Layout } from './lora.js';
import type { ProductBackend } from './product.js';
import type { Matrix } from './tensor.js';

/** W0 += scale·P·Q. */
export interface FactoredChange {
  readonly form: 'factored';
  /** out × k */
  readonly p: Matrix<Float32Array>;
  /** k × in */
  readonly q: Matrix<Float32Array>;
  readonly scale: number;
}

/** W0 += scale·D. */
export interface DenseChange {
  readonly form: 'dense';
  /** out × in */
  readonly d: Matrix<Float32Array>;
  readonly scale: number;
}

/** A change to a base weight, factored or dense. */
export type BaseChange = FactoredChange | DenseChange;

/** A change together with the stored layout of the weight it applies to (what a strategy returns). */
export type ModuleBaseChange = BaseChange & { readonly layout: Layout };

/** Inner size k of a factored change; 0 for a dense one. */
export function changeInner(change: BaseChange): number {
  return change.form === 'factored' ? change.p.shape[1] : 0;
}

/**
 * target += scale·D for D out × in; transposed into a `conv1d` target (in × out). Each value is
 * rounded to float32 once (scale·d, then the sum). With `from`, target = from + scale·D instead (one
 * pass for a copy-and-update, the same bits).
 */
export function addDense(target: Matrix<Float32Array>, layout: Layout, d: Matrix<Float32Array>, scale: number, from: Matrix<Float32Array> = target): void {
  const [out, inF] = d.shape;
  const t = target.data;
  const w = from.data;
  const src = d.data;
  if (layout === 'linear') {
    if (scale === 1) { for (let i = 0; i < src.length; i++) t[i] = w[i] + src[i]; }
    else for (let i = 0; i < src.length; i++) t[i] = w[i] + Math.fround(scale * src[i]);
    return;
  }
  if (from !== target) t.set(w);
  for (let o = 0; o < out; o++) {
    for (let x = 0; x < inF; x++) t[x * out + o] += scale === 1 ? src[o * inF + x] : Math.fround(scale * src[o * inF + x]);
  }
}

/**
 * Applies a change to a stored weight of the given layout: the factored form through the backend's
 * fused product, the dense form by `addDense`. With `from` (dense only), target = from + change.
 */
export async function applyBaseChange(target: Matrix<Float32Array>, layout: Layout, change: BaseChange, backend: ProductBackend, from?: Matrix<Float32Array>): Promise<void> {
  if (change.form === 'dense') {
    addDense(target, layout, change.d, change.scale, from);
    return;
  }
  if (from !== undefined && from !== target) target.data.set(from.data);
  await backend.addScaledProduct(target, layout, change.p, change.q, change.scale);
}
