/**
 * Streaming safetensors reader: opens the file, reads and validates the header, then reads one
 * tensor (or a block of its rows) at a time by byte range, so models larger than memory can be
 * processed tensor by tensor. Float dtypes convert to float32/float64; any dtype reads raw.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Matrix, Tensor } from '../core/tensor.js';
import { FormatError, isNotFound } from './errors.js';
import { bfloat16ToFloat32, float16ToFloat32 } from './halfFloat.js';
import { MAX_HEADER_BYTES, isFloatDType, itemSize, parseHeader } from './safetensorsHeader.js';
import type { SafetensorsDType, TensorInfo } from './safetensorsHeader.js';

export type { SafetensorsDType, TensorInfo } from './safetensorsHeader.js';

/** A read-only view of one safetensors file. Call `close()` when done. */
export interface SafetensorsReader {
  readonly path: string;
  /** Tensors by name, iterating in file order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** The `__metadata__` map ({} when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Entry of one tensor; throws SAFETENSORS_TENSOR_NOT_FOUND naming close names. */
  info(name: string): TensorInfo;
  /** The tensor's bytes as stored (little-endian), any dtype. */
  readRaw(name: string): Promise<Uint8Array>;
  /** Bytes [start, start + length) of the tensor's stored bytes: a huge tensor copied in pieces. */
  readRawRange(name: string, start: number, length: number): Promise<Uint8Array>;
  /** The same bytes into `out` (its length from `start`): a caller streaming a tensor reuses one buffer. */
  readRawRangeInto(name: string, start: number, out: Uint8Array): Promise<void>;
  /** The tensor as float32 (F16/BF16 widen exactly, F64 rounds to nearest). */
  readFloat32(name: string): Promise<Float32Array>;
  /** The tensor as float64 (exact for every float dtype). */
  readFloat64(name: string): Promise<Float64Array>;
  /** The tensor with its shape, as float32. */
  readTensor(name: string): Promise<Tensor<Float32Array>>;
  /** A 2-D tensor as a float32 matrix; throws if it is not 2-D. */
  readMatrix(name: string): Promise<Matrix<Float32Array>>;
  /**
   * The tensor as float32 into `out` (its element count), read and widened a few MiB at a time:
   * no full-size temporary besides `out`, which callers can reuse from tensor to tensor.
   */
  readFloat32Into(name: string, out: Float32Array): Promise<void>;
  /** Rows [start, end) of a tensor (first dimension) as float32: for blocks of huge matrices. */
  readRows(name: string, start: number, end: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Node cannot read more than 2 GiB in one call; larger tensors are read in pieces. */
const MAX_READ = 1 << 30;
/** Stored bytes per piece when `readFloat32Into` widens a half or double tensor. */
const WIDEN_BYTES = 4 << 20;

function hostIsLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

async function readExactly(fh: FileHandle, target: Uint8Array, position: number, file: string, what: string): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const want = Math.min(MAX_READ, target.length - done);
    const { bytesRead } = await fh.read(target, done, want, position + done);
    if (bytesRead === 0) {
      throw new FormatError('SAFETENSORS_TRUNCATED', `file ended after ${position + done} bytes while reading ${what}`, { file });
    }
    done += bytesRead;
  }
}

/**
 * Converts stored bytes of a float dtype (aligned to its item size) to float32; for F32 the result
 * is a view of `bytes`, otherwise new. `ctx` names the tensor when the dtype is not a float type.
 */
export function bytesToFloat32(bytes: Uint8Array, dtype: SafetensorsDType, ctx: { file: string; tensor: string }): Float32Array {
  const n = bytes.byteLength / itemSize(dtype);
  switch (dtype) {
    case 'F32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    case 'F64':
      return Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, n));
    case 'F16':
      return float16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, n));
    case 'BF16':
      return bfloat16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, n));
    default:
      throw new FormatError('SAFETENSORS_NOT_FLOAT', `dtype ${dtype} is not a float type; use readRaw for pass-through`, ctx);
  }
}

function closeNames(name: string, names: Iterable<string>): string[] {
  const tail = name.split('.').slice(-2).join('.');
  const all = [...names];
  const related = all.filter((n) => n.endsWith(tail) || n.includes(name) || name.includes(n));
  return (related.length > 0 ? related : all).slice(0, 5);
}

class FileReader implements SafetensorsReader {
  private closed = false;

  constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) {
      const near = closeNames(name, this.tensors.keys());
      throw new FormatError('SAFETENSORS_TENSOR_NOT_FOUND', `no such tensor (${this.tensors.size} tensors${near.length > 0 ? `; e.g. ${near.map((n) => `'${n}'`).join(', ')}` : ''})`, { file: this.path, tensor: name });
    }
    return info;
  }

  private async readRange(info: TensorInfo, byteStart: number, byteLength: number): Promise<Uint8Array> {
    if (this.closed) throw new FormatError('SAFETENSORS_CLOSED', 'reader is closed', { file: this.path, tensor: info.name });
    // A fresh ArrayBuffer is 8-byte aligned, so typed views of any width fit it.
    const bytes = new Uint8Array(byteLength);
    await readExactly(this.fh, bytes, info.byteOffset + byteStart, this.path, `tensor '${info.name}'`);
    return bytes;
  }

  async readRaw(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    return this.readRange(info, 0, info.byteLength);
  }

  private checkRange(op: string, info: TensorInfo, start: number, length: number): void {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0 || start + length > info.byteLength) {
      throw new RangeError(`${op}: bytes [${start}, ${start + length}) out of range for ${this.path}: tensor '${info.name}' with ${info.byteLength} bytes`);
    }
  }

  async readRawRange(name: string, start: number, length: number): Promise<Uint8Array> {
    const info = this.info(name);
    this.checkRange('readRawRange', info, start, length);
    return this.readRange(info, start, length);
  }

  async readRawRangeInto(name: string, start: number, out: Uint8Array): Promise<void> {
    const info = this.info(name);
    this.checkRange('readRawRangeInto', info, start, out.byteLength);
    if (this.closed) throw new FormatError('SAFETENSORS_CLOSED', 'reader is closed', { file: this.path, tensor: name });
    await readExactly(this.fh, out, info.byteOffset + start, this.path, `tensor '${name}'`);
  }

  async readFloat32(name: string): Promise<Float32Array> {
    const info = this.info(name);
    this.requireFloat(info);
    return bytesToFloat32(await this.readRange(info, 0, info.byteLength), info.dtype, { file: this.path, tensor: name });
  }

  async readFloat64(name: string): Promise<Float64Array> {
    const info = this.info(name);
    this.requireFloat(info);
    const bytes = await this.readRange(info, 0, info.byteLength);
    if (info.dtype === 'F64') return new Float64Array(bytes.buffer, 0, bytes.byteLength / 8);
    return Float64Array.from(bytesToFloat32(bytes, info.dtype, { file: this.path, tensor: name }));
  }

  async readTensor(name: string): Promise<Tensor<Float32Array>> {
    const info = this.info(name);
    return { shape: [...info.shape], data: await this.readFloat32(name) };
  }

  async readMatrix(name: string): Promise<Matrix<Float32Array>> {
    const info = this.info(name);
    if (info.shape.length !== 2) {
      throw new FormatError('SAFETENSORS_INVALID_SHAPE', `expected a 2-D tensor, got shape [${info.shape.join(', ')}]`, { file: this.path, tensor: name });
    }
    return { shape: [info.shape[0], info.shape[1]], data: await this.readFloat32(name) };
  }

  async readFloat32Into(name: string, out: Float32Array): Promise<void> {
    const info = this.info(name);
    this.requireFloat(info);
    const size = itemSize(info.dtype);
    const n = info.byteLength / size;
    if (out.length !== n) throw new RangeError(`readFloat32Into: out has ${out.length} elements, ${this.path}: tensor '${name}' has ${n}`);
    if (this.closed) throw new FormatError('SAFETENSORS_CLOSED', 'reader is closed', { file: this.path, tensor: name });
    const what = `tensor '${name}'`;
    if (info.dtype === 'F32') {
      await readExactly(this.fh, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), info.byteOffset, this.path, what);
      return;
    }
    const per = Math.max(1, Math.min(n, Math.floor(WIDEN_BYTES / size)));
    const scratch = new Uint8Array(per * size);
    for (let start = 0; start < n; start += per) {
      const count = Math.min(per, n - start);
      const bytes = scratch.subarray(0, count * size);
      await readExactly(this.fh, bytes, info.byteOffset + start * size, this.path, what);
      const dst = out.subarray(start, start + count);
      if (info.dtype === 'BF16') bfloat16ToFloat32(new Uint16Array(scratch.buffer, 0, count), dst);
      else if (info.dtype === 'F16') float16ToFloat32(new Uint16Array(scratch.buffer, 0, count), dst);
      else dst.set(new Float64Array(scratch.buffer, 0, count));
    }
  }

  async readRows(name: string, start: number, end: number): Promise<Float32Array> {
    const info = this.info(name);
    this.requireFloat(info);
    const rows = info.shape.length === 0 ? 1 : info.shape[0];
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > rows) {
      throw new RangeError(`readRows: rows [${start}, ${end}) out of range for ${this.path}: tensor '${name}' with ${rows} rows`);
    }
    const rowBytes = rows === 0 ? 0 : info.byteLength / rows;
    const bytes = await this.readRange(info, start * rowBytes, (end - start) * rowBytes);
    return bytesToFloat32(bytes, info.dtype, { file: this.path, tensor: name });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  private requireFloat(info: TensorInfo): void {
    if (!isFloatDType(info.dtype)) {
      throw new FormatError('SAFETENSORS_NOT_FLOAT', `dtype ${info.dtype} is not a float type (F16, BF16, F32, F64); use readRaw for pass-through`, { file: this.path, tensor: info.name });
    }
  }
}

/**
 * Opens a safetensors file and validates its header (size limits, JSON, dtypes, shapes, offsets
 * that tile the data section exactly). Reads only the header; tensors are read on demand.
 */
export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  if (!hostIsLittleEndian()) throw new Error('safetensors: big-endian hosts are not supported');
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (isNotFound(err)) throw new FormatError('FILE_NOT_FOUND', 'no such safetensors file', { file: path }, { cause: err });
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (size < 8) throw new FormatError('SAFETENSORS_TRUNCATED', `file has ${size} bytes, fewer than the 8-byte header length`, { file: path });
    const prefix = new Uint8Array(8);
    await readExactly(fh, prefix, 0, path, 'the header length');
    const n = new DataView(prefix.buffer).getBigUint64(0, true);
    if (n > BigInt(MAX_HEADER_BYTES)) {
      throw new FormatError('SAFETENSORS_HEADER_TOO_LARGE', `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`, { file: path });
    }
    const headerLength = Number(n);
    if (8 + headerLength > size) {
      throw new FormatError('SAFETENSORS_TRUNCATED', `header length ${headerLength} runs past the end of the file (${size} bytes)`, { file: path });
    }
    const header = new Uint8Array(headerLength);
    await readExactly(fh, header, 8, path, 'the header');
    const parsed = parseHeader(header, size, path);
    return new FileReader(path, fh, parsed.tensors, parsed.metadata);
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * Opens a file, runs `fn` with the reader and closes it, also when `fn` throws.
 */
export async function withSafetensors<T>(path: string, fn: (reader: SafetensorsReader) => Promise<T>): Promise<T> {
  const reader = await openSafetensors(path);
  try {
    return await fn(reader);
  } finally {
    await reader.close();
  }
}
