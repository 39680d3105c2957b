/**
 * Streaming safetensors writer. The header is computed up front from names, dtypes and shapes,
 * then tensors are written one at a time at their offsets (any order), converting float32/float64
 * to the stored dtype in bounded chunks. The file appears under its name only when `close()` has
 * checked that every tensor was written (temp file, fsync, rename), so a crash never leaves a
 * half-written file that looks valid.
 */
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { FormatError } from './errors.js';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16, float64ToBfloat16, float64ToFloat16 } from './halfFloat.js';
import type { DowncastMeter } from './halfFloat.js';
import { isFloatDType, itemSize, planHeader, referenceOrder } from './safetensorsHeader.js';
import type { SafetensorsDType, TensorInfo, TensorSpec } from './safetensorsHeader.js';

/** Names, dtypes and shapes of the tensors a file will hold. */
export type SafetensorsEntry = TensorSpec;

/** Data accepted by `writeTensor`: floats (converted to the entry's dtype) or the exact raw bytes. */
export type TensorData = Float32Array | Float64Array | Uint8Array;

export interface SafetensorsWriterOptions {
  /**
   * 'given' (default) keeps the entries' order; 'reference' sorts as huggingface/safetensors does
   * (dtype by alignment, then name), for byte-identical files.
   */
  readonly order?: 'given' | 'reference';
}

/** Options of one `writeTensor` call. */
export interface WriteTensorOptions {
  /**
   * Fed with every piece of float data and the values it is stored as, while it is encoded: the
   * rounding error of a down-cast without a second pass over the tensor.
   */
  readonly downcast?: DowncastMeter;
}

/** A file being written. Call `close()` to finish it or `abort()` to drop it. */
export interface SafetensorsWriter {
  readonly path: string;
  /** The planned layout, in file order (absolute byte offsets). */
  readonly tensors: readonly TensorInfo[];
  writeTensor(name: string, data: TensorData, options?: WriteTensorOptions): Promise<void>;
  /**
   * Writes the next piece of a tensor's stored bytes, pieces in order from its start (a large
   * tensor copied without holding it whole); the tensor counts as written once all its bytes are.
   */
  writeRawPart(name: string, bytes: Uint8Array): Promise<void>;
  /** Checks that every tensor was written, flushes and moves the file into place. */
  close(): Promise<void>;
  /** Removes the partial file. */
  abort(): Promise<void>;
}

/** Elements converted per chunk: bounds the extra memory of a down-cast to about a MiB (and keeps it in cache). */
const CHUNK = 1 << 18;

class FileWriter implements SafetensorsWriter {
  private readonly byName: Map<string, TensorInfo>;
  private readonly written = new Set<string>();
  /** Bytes written so far of tensors being written in pieces. */
  private readonly partial = new Map<string, number>();
  private state: 'open' | 'closed' | 'aborted' = 'open';

  constructor(
    readonly path: string,
    private readonly tmpPath: string,
    private readonly fh: FileHandle,
    readonly tensors: readonly TensorInfo[],
  ) {
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  /** The entry of a tensor that may still be written; throws naming it otherwise. */
  private pending(name: string): TensorInfo {
    const ctx = { file: this.path, tensor: name };
    if (this.state !== 'open') throw new FormatError('SAFETENSORS_WRITE_INVALID', `writer is ${this.state}`, ctx);
    const info = this.byName.get(name);
    if (info === undefined) throw new FormatError('SAFETENSORS_WRITE_INVALID', `tensor is not among the ${this.tensors.length} planned entries`, ctx);
    if (this.written.has(name)) throw new FormatError('SAFETENSORS_WRITE_INVALID', 'tensor written twice', ctx);
    return info;
  }

  async writeRawPart(name: string, bytes: Uint8Array): Promise<void> {
    const info = this.pending(name);
    const done = this.partial.get(name) ?? 0;
    if (done + bytes.byteLength > info.byteLength) {
      throw new FormatError('SAFETENSORS_WRITE_INVALID', `piece of ${bytes.byteLength} bytes after ${done} runs past the tensor's ${info.byteLength} bytes`, { file: this.path, tensor: name });
    }
    await this.writeAt(bytes, info.byteOffset + done);
    if (done + bytes.byteLength === info.byteLength) {
      this.partial.delete(name);
      this.written.add(name);
    } else {
      this.partial.set(name, done + bytes.byteLength);
    }
  }

  async writeTensor(name: string, data: TensorData, options: WriteTensorOptions = {}): Promise<void> {
    const ctx = { file: this.path, tensor: name };
    const info = this.pending(name);
    if (this.partial.has(name)) throw new FormatError('SAFETENSORS_WRITE_INVALID', 'tensor is being written in pieces', ctx);
    const numel = info.byteLength / itemSize(info.dtype);
    if (data instanceof Uint8Array) {
      if (data.byteLength !== info.byteLength) {
        throw new FormatError('SAFETENSORS_WRITE_INVALID', `raw data has ${data.byteLength} bytes, ${info.dtype}[${info.shape.join(', ')}] needs ${info.byteLength}`, ctx);
      }
      await this.writeAt(data, info.byteOffset);
    } else {
      if (!isFloatDType(info.dtype)) {
        throw new FormatError('SAFETENSORS_WRITE_INVALID', `dtype ${info.dtype} takes raw bytes (Uint8Array), not ${data.constructor.name}`, ctx);
      }
      if (data.length !== numel) {
        throw new FormatError('SAFETENSORS_WRITE_INVALID', `got ${data.length} values, shape [${info.shape.join(', ')}] needs ${numel}`, ctx);
      }
      await this.writeFloats(data, info, options.downcast);
    }
    this.written.add(name);
  }

  private async writeFloats(data: Float32Array | Float64Array, info: TensorInfo, meter: DowncastMeter | undefined): Promise<void> {
    const dtype = info.dtype;
    if ((dtype === 'F32' && data instanceof Float32Array) || (dtype === 'F64' && data instanceof Float64Array)) {
      meter?.add(data, data);
      await this.writeAt(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.byteOffset);
      return;
    }
    const size = itemSize(dtype);
    const piece = Math.min(CHUNK, data.length);
    // Each piece is written before the next is converted, so one scratch buffer serves them all.
    const scratch = new ArrayBuffer(piece * size);
    const widened = meter === undefined ? undefined : new Float32Array(piece);
    for (let start = 0; start < data.length; start += CHUNK) {
      const part = data.subarray(start, Math.min(data.length, start + CHUNK));
      const bytes = convert(part, dtype, scratch);
      if (meter !== undefined) meter.add(part, storedAsFloat(bytes, dtype, part.length, widened!));
      await this.writeAt(bytes, info.byteOffset + start * size);
    }
  }

  private async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await this.fh.write(bytes, done, Math.min(bytes.byteLength - done, 1 << 30), position + done);
      done += bytesWritten;
    }
  }

  async close(): Promise<void> {
    if (this.state !== 'open') return;
    const missing = this.tensors.filter((t) => !this.written.has(t.name)).map((t) => t.name);
    if (missing.length > 0) {
      await this.abort();
      throw new FormatError('SAFETENSORS_WRITE_INCOMPLETE',
        `closed with ${missing.length} of ${this.tensors.length} tensors unwritten (${missing.slice(0, 5).map((n) => `'${n}'`).join(', ')}${missing.length > 5 ? ', …' : ''}); file not written`, { file: this.path });
    }
    this.state = 'closed';
    await this.fh.sync();
    await this.fh.close();
    await rename(this.tmpPath, this.path);
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    await this.fh.close();
    await rm(this.tmpPath, { force: true });
  }
}

/**
 * Converts a piece to the stored dtype into `scratch` (reused from piece to piece, so a long tensor
 * leaves no garbage behind); returns the bytes to write, a view of `scratch`.
 */
function convert(part: Float32Array | Float64Array, dtype: SafetensorsDType, scratch: ArrayBuffer): Uint8Array {
  const n = part.length;
  switch (dtype) {
    case 'F32':
      new Float32Array(scratch, 0, n).set(part);
      break;
    case 'F64':
      new Float64Array(scratch, 0, n).set(part);
      break;
    case 'F16':
      if (part instanceof Float32Array) float32ToFloat16(part, new Uint16Array(scratch, 0, n));
      else float64ToFloat16(part, new Uint16Array(scratch, 0, n));
      break;
    case 'BF16':
      if (part instanceof Float32Array) float32ToBfloat16(part, new Uint16Array(scratch, 0, n));
      else float64ToBfloat16(part, new Uint16Array(scratch, 0, n));
      break;
    default:
      throw new Error(`convert: ${dtype} is not a float dtype`);
  }
  return new Uint8Array(scratch, 0, n * itemSize(dtype));
}

/** The values `bytes` (a converted piece of `count` elements) hold, as floats, for a down-cast meter. */
function storedAsFloat(bytes: Uint8Array, dtype: SafetensorsDType, count: number, scratch: Float32Array): Float32Array | Float64Array {
  switch (dtype) {
    case 'F16':
      return float16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, count), scratch.subarray(0, count));
    case 'BF16':
      return bfloat16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, count), scratch.subarray(0, count));
    case 'F32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    default:
      return new Float64Array(bytes.buffer, bytes.byteOffset, count);
  }
}

/**
 * Starts a file with the given tensors: writes the header now, the tensors as `writeTensor` is
 * called. Offsets are contiguous; the header JSON is padded with spaces to a multiple of 8.
 */
export async function createSafetensorsWriter(
  path: string,
  entries: readonly SafetensorsEntry[],
  metadata?: Readonly<Record<string, string>>,
  options: SafetensorsWriterOptions = {},
): Promise<SafetensorsWriter> {
  const ordered = options.order === 'reference' ? referenceOrder(entries) : entries;
  const plan = planHeader(ordered, metadata, path);
  const tmpPath = `${path}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmpPath, 'wx');
  try {
    await fh.write(plan.headerBytes, 0, plan.headerBytes.byteLength, 0);
    // Sizing the file up front makes zero-length tensors and the final size right whatever the order.
    await fh.truncate(plan.fileSize);
  } catch (err) {
    await fh.close();
    await rm(tmpPath, { force: true });
    throw err;
  }
  return new FileWriter(path, tmpPath, fh, plan.tensors);
}

/** A tensor to write in one go. */
export interface TensorToWrite {
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/**
 * Writes a whole file from tensors already in memory, in the given order (a Map keeps its order;
 * a plain object lists integer-like names first, as JavaScript objects do).
 */
export async function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  metadata?: Readonly<Record<string, string>>,
  options: SafetensorsWriterOptions = {},
): Promise<void> {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Readonly<Record<string, TensorToWrite>>);
  const writer = await createSafetensorsWriter(path, list.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })), metadata, options);
  try {
    for (const [name, t] of list) await writer.writeTensor(name, t.data);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await writer.close();
}
