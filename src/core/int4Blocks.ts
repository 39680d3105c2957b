/**
 * Symmetric 4-bit block quantisation of a row-major matrix, in the layout onnxruntime's
 * GatherBlockQuantized and MatMulNBits read: each row is cut into blocks of `blockSize` columns;
 * a block's scale is `max |w| / 7` (float32) and each value becomes the code
 * `c = clamp(round(w / scale), −7, 7) + 8` in [1, 15] (round half to even), stored two per byte
 * (the even column in the low nibble). It stands for `(c − 8)·scale`; an all-zero block has scale 0.
 * The codes use 15 of the 16 levels so that zero is exact and the range is symmetric; the largest
 * |w| of each block is represented exactly up to float32 rounding of the scale.
 */

/** A matrix quantised in 4-bit blocks. */
export interface Int4Blocks {
  readonly rows: number;
  readonly cols: number;
  readonly blockSize: number;
  /** `rows × cols / 2` bytes: codes of columns 2j (low nibble) and 2j+1 (high nibble). */
  readonly codes: Uint8Array;
  /** `rows × cols / blockSize` scales, row by row. */
  readonly scales: Float32Array;
}

/** The largest code magnitude: codes are 8 ± 7. */
export const INT4_LEVELS = 7;

/** Round half to even (the rounding numpy and PyTorch use). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkShape(rows: number, cols: number, blockSize: number, length: number, what: string): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) throw new RangeError(`${what}: invalid shape [${rows}, ${cols}]`);
  if (!Number.isInteger(blockSize) || blockSize < 2 || blockSize % 2 !== 0) throw new RangeError(`${what}: block size ${blockSize} must be an even integer ≥ 2`);
  if (cols % blockSize !== 0) throw new RangeError(`${what}: ${cols} columns are not a multiple of the block size ${blockSize}`);
  if (length !== rows * cols) throw new RangeError(`${what}: [${rows}, ${cols}] needs ${rows * cols} values, got ${length}`);
}

/** Quantises `values` (`rows × cols`, row-major); throws naming the first non-finite value. */
export function quantizeInt4(values: Float32Array, rows: number, cols: number, blockSize: number): Int4Blocks {
  checkShape(rows, cols, blockSize, values.length, 'quantizeInt4');
  const blocks = cols / blockSize;
  const codes = new Uint8Array((rows * cols) / 2);
  const scales = new Float32Array(rows * blocks);
  for (let b = 0; b < rows * blocks; b++) {
    const start = b * blockSize;
    let max = 0;
    for (let i = start; i < start + blockSize; i++) {
      const w = values[i];
      if (!Number.isFinite(w)) throw new RangeError(`quantizeInt4: value ${w} at row ${Math.floor(i / cols)}, column ${i % cols} is not finite`);
      const a = Math.abs(w);
      if (a > max) max = a;
    }
    const scale = Math.fround(max / INT4_LEVELS);
    scales[b] = scale;
    for (let i = start; i < start + blockSize; i += 2) {
      const lo = scale === 0 ? 8 : Math.min(INT4_LEVELS, Math.max(-INT4_LEVELS, roundHalfEven(values[i] / scale))) + 8;
      const hi = scale === 0 ? 8 : Math.min(INT4_LEVELS, Math.max(-INT4_LEVELS, roundHalfEven(values[i + 1] / scale))) + 8;
      codes[i >> 1] = lo | (hi << 4);
    }
  }
  return { rows, cols, blockSize, codes, scales };
}

/** The values the blocks stand for, `(c − 8)·scale`, in float64 (a reference) or rounded to float32 (what onnxruntime computes). */
export function dequantizeInt4(q: Int4Blocks, out: Float32Array | Float64Array = new Float64Array(q.rows * q.cols)): Float32Array | Float64Array {
  checkShape(q.rows, q.cols, q.blockSize, out.length, 'dequantizeInt4');
  if (q.codes.length !== out.length / 2 || q.scales.length !== out.length / q.blockSize) {
    throw new RangeError(`dequantizeInt4: ${q.codes.length} code bytes and ${q.scales.length} scales do not fit [${q.rows}, ${q.cols}] in blocks of ${q.blockSize}`);
  }
  for (let i = 0; i < out.length; i++) {
    const byte = q.codes[i >> 1];
    const code = (i & 1) === 0 ? byte & 15 : byte >> 4;
    out[i] = (code - 8) * q.scales[Math.floor(i / q.blockSize)];
  }
  return out;
}
