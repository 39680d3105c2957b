/**
 * Element types of graph values: float32 (models), float64 (gradient checks and references),
 * int64 (token ids, shapes, indices), int32 and bool (masks), uint32 (32-bit integer arithmetic
 * where a provider has no int64 kernels: src/graph/lower.ts), and the storage types of frozen
 * weights held below float32 (nn/storedWeight.ts): float16, bfloat16 (fed as its uint16 bits and
 * reinterpreted in the graph) and uint8 (two 4-bit codes per byte). Storage values are never
 * computed with: they are widened to float32 where they are used.
 */
import { check, GraphError } from './errors.js';

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint32' | 'bool' | 'float16' | 'bfloat16' | 'uint16' | 'uint8';
export type FloatDType = 'float32' | 'float64';

/** The typed array that holds the data of each dtype (bool as one byte per element). */
export interface DTypeArrays {
  float32: Float32Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  uint32: Uint32Array;
  bool: Uint8Array;
  /** The bits of each value. */
  float16: Uint16Array;
  /** The bits of each value (the upper half of a float32). */
  bfloat16: Uint16Array;
  uint16: Uint16Array;
  uint8: Uint8Array;
}

export type TypedData = DTypeArrays[DType];

/** True for the differentiable dtypes. */
export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'float32' || dtype === 'float64';
}

/**
 * The dtype of a typed array, for initializers and constants: a Uint16Array is uint16 and a
 * Uint8Array bool (storage dtypes are only ever graph inputs, whose dtype is declared).
 */
export function dtypeOf(data: TypedData): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof Uint16Array) return 'uint16';
  return 'bool';
}

/** A typed array of one element holding `value` in `dtype`. */
export function scalarData(value: number, dtype: DType): TypedData {
  switch (dtype) {
    case 'float32':
      return Float32Array.of(value);
    case 'float64':
      return Float64Array.of(value);
    case 'int64':
      check(Number.isInteger(value), () => `scalar: ${value} is not an integer (dtype int64)`);
      return BigInt64Array.of(BigInt(value));
    case 'int32':
      check(Number.isInteger(value), () => `scalar: ${value} is not an integer (dtype int32)`);
      return Int32Array.of(value);
    case 'uint32':
      check(Number.isInteger(value) && value >= 0 && value < 2 ** 32, () => `scalar: ${value} is not a 32-bit unsigned integer (dtype uint32)`);
      return Uint32Array.of(value);
    case 'bool':
      return Uint8Array.of(value === 0 ? 0 : 1);
    case 'uint16':
    case 'uint8':
      check(Number.isInteger(value) && value >= 0 && value < 2 ** (dtype === 'uint8' ? 8 : 16), () => `scalar: ${value} is not a ${dtype} value`);
      return dtype === 'uint8' ? Uint8Array.of(value) : Uint16Array.of(value);
    case 'float16':
    case 'bfloat16':
      throw new GraphError(`scalar: no ${dtype} constants (it is a storage dtype of frozen weights, widened to float32 before use)`);
  }
}

const littleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Little-endian bytes of a typed array (a copy), as ONNX `raw_data` wants them. */
export function rawBytes(data: TypedData): Uint8Array {
  check(littleEndian, () => 'rawBytes: this platform is big-endian; ONNX raw_data is little-endian');
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
}
