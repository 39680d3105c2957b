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
import { float32ToBfloat16, float32ToFloat16, float64ToBfloat16, float64ToFloat16 } from './halfFloat.js';
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

/** A file being written. Call `close()` to finish it or `abort()` to drop it. */
export interface SafetensorsWriter {
  readonly path: string;
  /** The planned layout, in file order (absolute byte offsets). */
  readonly tensors: readonly TensorInfo[];
  writeTensor(name: string, data: TensorData): Promise<void>;
  /** Checks that every tensor was written, flushes and moves the file into place. */
  close(): Promise<void>;
  /** Removes the partial file. */
  abort(): Promise<void>;
}

/** Elements converted per chunk: bounds the extra memory of a down-cast to a few MB. */
const CHUNK = 1 << 20;

class FileWriter implements SafetensorsWriter {
  private readonly byName: Map<string, TensorInfo>;
  private readonly written = new Set<string>();
  private state: 'open' | 'closed' | 'aborted' = 'open';

  constructor(
    readonly path: string,
    private readonly tmpPath: string,
    private readonly fh: FileHandle,
    readonly tensors: readonly TensorInfo[],
  ) {
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  async writeTensor(name: string, data: TensorData): Promise<void> {
    const ctx = { file: this.path, tensor: name };
    if (this.state !== 'open') throw new FormatError('SAFETENSORS_WRITE_INVALID', `writer is ${this.state}`, ctx);
    const info = this.byName.get(name);
    if (info === undefined) throw new FormatError('SAFETENSORS_WRITE_INVALID', `tensor is not among the ${this.tensors.length} planned entries`, ctx);
    if (this.written.has(name)) throw new FormatError('SAFETENSORS_WRITE_INVALID', 'tensor written twice', ctx);
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
      await this.writeFloats(data, info);
    }
    this.written.add(name);
  }

  private async writeFloats(data: Float32Array | Float64Array, info: TensorInfo): Promise<void> {
    const dtype = info.dtype;
    if ((dtype === 'F32' && data instanceof Float32Array) || (dtype === 'F64' && data instanceof Float64Array)) {
      await this.writeAt(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.byteOffset);
      return;
    }
    const size = itemSize(dtype);
    for (let start = 0; start < data.length; start += CHUNK) {
      const part = data.subarray(start, Math.min(data.length, start + CHUNK));
      await this.writeAt(convert(part, dtype), info.byteOffset + start * size);
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
        `closed with ${missing.length} of ${this.tensors.length} tensors unwritten (${missing.slice(0, 5).map((n) => `'${n}'`).join(', ')}${missing.length > 5 ? ', …' : ''}); file not written`,
        { file: this.path });
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

function convert(part: Float32Array | Float64Array, dtype: SafetensorsDType): Uint8Array {
  const asBytes = (a: Float32Array | Float64Array | Uint16Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case 'F32':
      return asBytes(Float32Array.from(part));
    case 'F64':
      return asBytes(Float64Array.from(part));
    case 'F16':
      return asBytes(part instanceof Float32Array ? float32ToFloat16(part) : float64ToFloat16(part));
    case 'BF16':
      return asBytes(part instanceof Float32Array ? float32ToBfloat16(part) : float64ToBfloat16(part));
    default:
      throw new Error(`convert: ${dtype} is not a float dtype`);
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
