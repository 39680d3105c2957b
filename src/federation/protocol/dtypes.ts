/**
 * Wire dtypes and their little-endian byte encodings. Float tensors are float32 in memory; the
 * uplink may carry float16 or bfloat16 (rounded to nearest, ties to even, by src/formats/halfFloat.ts,
 * the conversions safetensors files use too) and the receiver widens them back to float32 exactly.
 * `uint8` is for opaque blobs (base model chunks) only.
 */
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../../formats/halfFloat.js';

/** Dtypes a tensor table may name. */
export type WireDType = 'float32' | 'float16' | 'bfloat16' | 'uint8';
/** Dtypes of float tensors. */
export type FloatWireDType = Exclude<WireDType, 'uint8'>;

export const WIRE_DTYPES: readonly WireDType[] = ['float32', 'float16', 'bfloat16', 'uint8'];
export const FLOAT_WIRE_DTYPES: readonly FloatWireDType[] = ['float32', 'float16', 'bfloat16'];

/** Bytes per element. */
export const ITEM_SIZE: Readonly<Record<WireDType, number>> = { float32: 4, float16: 2, bfloat16: 2, uint8: 1 };

/** True for a dtype name this version knows. */
export function isWireDType(value: unknown): value is WireDType {
  return typeof value === 'string' && (WIRE_DTYPES as readonly string[]).includes(value);
}

/** Typed arrays use the host byte order; the wire is little-endian. */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/**
 * Little-endian bytes of float32 `data` in `dtype`. For float32 on a little-endian host this is a
 * view of `data` (no copy); otherwise new bytes.
 */
export function encodeFloatTensor(data: Float32Array, dtype: FloatWireDType): Uint8Array {
  if (dtype === 'float32') {
    const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (HOST_IS_LITTLE_ENDIAN) return view;
    const copy = new Uint8Array(view);
    swapBytes(copy, 4);
    return copy;
  }
  const bits = dtype === 'float16' ? float32ToFloat16(data) : float32ToBfloat16(data);
  const out = new Uint8Array(bits.buffer, 0, bits.byteLength);
  if (!HOST_IS_LITTLE_ENDIAN) swapBytes(out, 2);
  return out;
}

/** float32 values of little-endian `bytes` in `dtype` (always a fresh array). */
export function decodeFloatTensor(bytes: Uint8Array, dtype: FloatWireDType): Float32Array {
  // new Uint8Array(x) always copies; Buffer#slice would return a view of Node's shared pool.
  const copy = new Uint8Array(bytes);
  if (dtype === 'float32') {
    if (!HOST_IS_LITTLE_ENDIAN) swapBytes(copy, 4);
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  if (!HOST_IS_LITTLE_ENDIAN) swapBytes(copy, 2);
  const bits = new Uint16Array(copy.buffer, 0, copy.length / 2);
  return dtype === 'float16' ? float16ToFloat32(bits) : bfloat16ToFloat32(bits);
}

/**
 * float32 values of little-endian float32 `bytes` as a view of the same memory when it is 4-byte
 * aligned on a little-endian host (no copy; the caller must not let anyone write to the frame or
 * the view), else a fresh copy as `decodeFloatTensor`.
 */
export function viewFloat32Tensor(bytes: Uint8Array): Float32Array {
  if (HOST_IS_LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return decodeFloatTensor(bytes, 'float32');
}

/** Index of the first NaN/±Inf in `data`, or -1. */
export function firstNonFiniteIndex(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v − v is NaN exactly for NaN and ±Inf; cheaper than Number.isFinite in this loop.
    if (v - v !== 0) return i;
  }
  return -1;
}
