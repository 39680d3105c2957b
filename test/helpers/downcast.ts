// The rounding error of storing a whole tensor as a dtype, in one separate pass: what the
// production writers' `DowncastMeter` (fed while they encode) must report for the same values.
import { bfloat16ToFloat32, DowncastMeter, float16ToFloat32, float32ToBfloat16, float32ToFloat16, float64ToBfloat16, float64ToFloat16 } from '../../src/formats/halfFloat.js';
import type { DowncastReport, StorageFloat } from '../../src/formats/halfFloat.js';

/** Elements per piece: the piece and its stored copy stay in cache. */
const CHUNK = 1 << 16;

/** Measures the rounding error of storing `data` as `dtype`, piece by piece through a `DowncastMeter`. */
export function downcastError(data: Float32Array | Float64Array, dtype: StorageFloat): DowncastReport {
  const bits = new Uint16Array(CHUNK);
  const f32 = new Float32Array(CHUNK);
  const meter = new DowncastMeter(dtype);
  for (let start = 0; start < data.length; start += CHUNK) {
    const n = Math.min(CHUNK, data.length - start);
    const part = data.subarray(start, start + n);
    meter.add(part, storedValues(part, dtype, bits.subarray(0, n), f32.subarray(0, n)));
  }
  return meter.report();
}

/** The values `part` is stored as, widened back (into `f32`, through `bits`, for the half dtypes). */
function storedValues(part: Float32Array | Float64Array, dtype: StorageFloat, bits: Uint16Array, f32: Float32Array): Float32Array | Float64Array {
  switch (dtype) {
    case 'F64':
      return part;
    case 'F32':
      if (part instanceof Float32Array) return part;
      f32.set(part);
      return f32;
    case 'F16':
      if (part instanceof Float32Array) float32ToFloat16(part, bits);
      else float64ToFloat16(part, bits);
      return float16ToFloat32(bits, f32);
    case 'BF16':
      if (part instanceof Float32Array) float32ToBfloat16(part, bits);
      else float64ToBfloat16(part, bits);
      return bfloat16ToFloat32(bits, f32);
  }
}
