// A test's shorthand for a rows × cols matrix over given data (production builds `{ shape, data }`
// literals where it makes one).
import type { FloatArray, Matrix } from '../../src/core/tensor.js';

/** Wraps `data` as a rows × cols matrix, checking that the sizes agree. */
export function matrix<T extends FloatArray>(data: T, rows: number, cols: number): Matrix<T> {
  if (data.length !== rows * cols) throw new RangeError(`matrix: ${rows}×${cols} needs ${rows * cols} values, got ${data.length}`);
  return { shape: [rows, cols], data };
}
