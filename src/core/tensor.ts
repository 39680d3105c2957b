/**
 * Dense row-major tensors on typed arrays. The numeric core works in float32 (what models and the
 * wire carry) and float64 (references and accumulators); half types are converted at the edges
 * (src/formats).
 */

export type FloatArray = Float32Array | Float64Array;

/** A dense row-major tensor. `data.length` always equals the product of `shape`. */
export interface Tensor<T extends FloatArray = FloatArray> {
  readonly shape: readonly number[];
  readonly data: T;
}

/** A 2-D tensor, the shape of every LoRA factor and adapted weight. */
export interface Matrix<T extends FloatArray = FloatArray> extends Tensor<T> {
  readonly shape: readonly [number, number];
}

/** True when every entry is exactly zero. */
export function isAllZero(data: ArrayLike<number>): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/** Frobenius norm, accumulated in float64. */
export function frobeniusNorm(data: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i] * data[i];
  return Math.sqrt(s);
}

/**
 * Index of the first entry where `a` and `b` differ, or -1: by `===` (so +0 equals −0), or by
 * `same` (e.g. `Object.is` for bit-for-bit, where +0 and −0 differ).
 */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>, same: (x: number, y: number) => boolean = (x, y) => x === y): number {
  for (let i = 0; i < a.length; i++) if (!same(a[i], b[i])) return i;
  return -1;
}

/** Index of the first NaN or ±Inf value, or -1. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/** Formats a shape for messages: `[4096, 16]`. */
export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
