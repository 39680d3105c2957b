/**
 * Wire dtypes and their little-endian byte encodings. Float tensors are float32 in memory; the
 * uplink may carry float16 or bfloat16 (rounded to nearest, ties to even) and the receiver widens
 * them back to float32 exactly. `uint8` is for opaque blobs (base model chunks) only.
 */

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

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → float16 bits, round to nearest even; overflow gives ±Inf, NaN stays NaN. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, which is the right result (up to Inf).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** float16 bits → float32 value (exact). */
export function float16BitsToFloat32(h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m !== 0 ? NaN : sign * Infinity;
  u32[0] = ((h & 0x8000) << 16) | ((e + 112) << 23) | (m << 13);
  return f32[0];
}

/** float32 → bfloat16 bits, round to nearest even; NaN stays NaN. */
export function float32ToBfloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bfloat16 bits → float32 value (exact). */
export function bfloat16BitsToFloat32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

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
  const toBits = dtype === 'float16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
  const out = new Uint8Array(data.length * 2);
  for (let i = 0; i < data.length; i++) {
    const b = toBits(data[i]);
    out[2 * i] = b & 0xff;
    out[2 * i + 1] = b >>> 8;
  }
  return out;
}

/** float32 values of little-endian `bytes` in `dtype` (always a fresh array). */
export function decodeFloatTensor(bytes: Uint8Array, dtype: FloatWireDType): Float32Array {
  if (dtype === 'float32') {
    // new Uint8Array(x) always copies; Buffer#slice would return a view of Node's shared pool.
    const copy = new Uint8Array(bytes);
    if (!HOST_IS_LITTLE_ENDIAN) swapBytes(copy, 4);
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  const fromBits = dtype === 'float16' ? float16BitsToFloat32 : bfloat16BitsToFloat32;
  const n = bytes.length / 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = fromBits(bytes[2 * i] | (bytes[2 * i + 1] << 8));
  return out;
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
