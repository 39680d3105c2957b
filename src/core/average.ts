/**
 * Weighted averages of client matrices (FedAvg of LoRA factors): Σ w_i M_i accumulated in float64
 * and rounded to float32 once, so the result does not depend on the order of clients beyond that
 * single rounding.
 */
import { shapeString } from './tensor.js';
import type { Matrix } from './tensor.js';

/** Σ w_i · mats[i] as float32 (float64 accumulation). All matrices must share one shape. */
export function weightedAverage(mats: readonly Matrix[], weights: ArrayLike<number>, what = 'weightedAverage'): Matrix<Float32Array> {
  if (mats.length === 0) throw new RangeError(`${what}: no matrices to average`);
  if (mats.length !== weights.length) throw new RangeError(`${what}: ${mats.length} matrices but ${weights.length} weights`);
  const [rows, cols] = mats[0].shape;
  const acc = new Float64Array(rows * cols);
  for (let i = 0; i < mats.length; i++) {
    const m = mats[i];
    if (m.shape[0] !== rows || m.shape[1] !== cols) {
      throw new RangeError(`${what}: matrix ${i} has shape ${shapeString(m.shape)}, matrix 0 has ${shapeString(mats[0].shape)}`);
    }
    const w = weights[i];
    if (w === 0) continue;
    const d = m.data;
    for (let j = 0; j < acc.length; j++) acc[j] += w * d[j];
  }
  return { shape: [rows, cols], data: Float32Array.from(acc) };
}
