/**
 * onnxruntime's `com.microsoft` GatherBlockQuantized: rows of a block-quantised matrix, dequantised
 * to float32. The matrix `[rows, cols]` is stored as 4-bit codes, two per byte (`[rows, cols / 2]`
 * uint8, the even column in the low nibble), and one float32 scale per block of `blockSize`
 * consecutive columns (`[rows, cols / blockSize]`); with no zero points, value = (code − 8)·scale.
 * onnxruntime's CPU and WebGPU providers both implement it (docs/devices.md).
 */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { dimEquals, formatShape } from '../shape.js';
import { checkIndex, checkRank, graphOf } from './common.js';

/** Smallest block onnxruntime's kernel takes; blocks are powers of two. */
export const MIN_QUANT_BLOCK = 16;

/** True for a block size onnxruntime's block-quantised kernels take: a power of two ≥ 16. */
export function isQuantBlockSize(blockSize: number): boolean {
  return Number.isInteger(blockSize) && blockSize >= MIN_QUANT_BLOCK && (blockSize & (blockSize - 1)) === 0;
}

/** Rows `indices` of the 4-bit matrix (`codes`, `scales`), float32 `[...indices, cols]`; not differentiable. */
export function gatherBlockQuantized(codes: Value, indices: Value, scales: Value, blockSize: number, options: { recompute?: boolean } = {}): Value {
  const g = graphOf('gatherBlockQuantized', codes, indices, scales);
  checkRank('gatherBlockQuantized', 'codes', codes, 2);
  checkRank('gatherBlockQuantized', 'scales', scales, 2);
  checkIndex('gatherBlockQuantized', 'indices', indices);
  check(codes.dtype === 'uint8', () => `gatherBlockQuantized: codes must be uint8 (two 4-bit codes per byte), got ${codes.toString()}`);
  check(scales.dtype === 'float32', () => `gatherBlockQuantized: scales must be float32, got ${scales.toString()}`);
  check(isQuantBlockSize(blockSize), () => `gatherBlockQuantized: block size ${blockSize} must be a power of two ≥ ${MIN_QUANT_BLOCK}`);
  const [rows, half] = codes.shape;
  check(typeof half === 'number', () => `gatherBlockQuantized: codes ${formatShape(codes.shape)} need a static column count`);
  const cols = 2 * half;
  check(cols % blockSize === 0 && dimEquals(scales.shape[0], rows) && dimEquals(scales.shape[1], cols / blockSize),
    () => `gatherBlockQuantized: scales ${formatShape(scales.shape)} do not fit codes ${formatShape(codes.shape)} (${cols} columns) in blocks of ${blockSize}: expected [${String(rows)}, ${cols / blockSize}]`);
  return g.node('GatherBlockQuantized', [codes, indices, scales], { gather_axis: 0, quantize_axis: 1, block_size: blockSize, bits: 4 }, [{ dtype: 'float32', shape: [...indices.shape, cols] }], 'gatherBlockQuantized', options)[0];
}
