/**
 * Updating a weight as it is stored: the seam between streaming aggregation (which reads and writes
 * safetensors) and what computes W0 + s·P·Q block by block. `StoredWeightUpdater` is that seam;
 * src/runtime/kernels/storedUpdate.ts implements it as one onnxruntime graph per block (the fast
 * path), and `createBlockwiseUpdater` here implements it on any `ProductBackend` with the
 * TypeScript encoders (small shapes, tests, and the reference the graph is checked against).
 *
 * Semantics both follow: the stored block is widened exactly to float32 (f64 rounds), the update is
 * added in float32, the float32 result is rounded to the written dtype (round to nearest even), and
 * that rounding is measured (a {@link DowncastReport}) whenever it can lose something: the written
 * dtype is f16/bf16 and the weight was updated or changes dtype.
 */
import { baseWeightShape, type Layout } from '../core/lora.js';
import type { ProductBackend } from '../core/product.js';
import type { FactoredUpdate } from '../core/residual.js';
import {
  bfloat16ToFloat32,
  DowncastMeter,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
} from './halfFloat.js';
import type { DowncastReport } from './halfFloat.js';
import { bytesToFloat32 } from './safetensors.js';

/** A float dtype a weight is stored as. */
export type StoredFloat = 'F32' | 'F16' | 'BF16' | 'F64';

/** Bytes per element of a stored float dtype. */
export const STORED_BYTES: Readonly<Record<StoredFloat, number>> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/** Where an updater reads the stored matrix from and writes the result to (offsets within the tensor's bytes). */
export interface StoredMatrixIo {
  /** Fills `into` with the stored bytes at [start, start + into.byteLength). */
  read(start: number, into: Uint8Array): Promise<void>;
  /** Appends the next piece of the written tensor. */
  write(bytes: Uint8Array): Promise<void>;
}

export interface StoredMatrixJob {
  /** Stored shape (rows = first dimension). */
  readonly shape: readonly [number, number];
  readonly inDtype: StoredFloat;
  readonly outDtype: StoredFloat;
  /** The base update (scale·P·Q in the stored layout), or null to convert and sample only. */
  readonly update: FactoredUpdate | null;
  /** Stored rows whose float32 values before and after the update come back; sorted, distinct. */
  readonly sampleRows: readonly number[];
}

export interface StoredMatrixResult {
  /** The sampled rows before the update, packed (row sampleRows[i] at [i·cols, (i+1)·cols)). */
  readonly before: Float32Array;
  /** The same rows after the update, in float32, before rounding to the written dtype. */
  readonly after: Float32Array;
  /** Rounding of the float32 result into a narrower written dtype (absent when nothing is rounded). */
  readonly downcast?: DowncastReport;
}

/** Streams one stored matrix through W0 ← W0 + s·P·Q. */
export interface StoredWeightUpdater {
  readonly name: string;
  run(job: StoredMatrixJob, io: StoredMatrixIo): Promise<StoredMatrixResult>;
  dispose?(): Promise<void>;
}

/** Checks a job; errors name the shapes. Returns the layout and whether the update does anything. */
export function checkStoredJob(job: StoredMatrixJob, op: string): { layout: Layout; doUpdate: boolean; measure: boolean } {
  const [rows, cols] = job.shape;
  const { update } = job;
  const layout: Layout = update?.layout ?? 'linear';
  if (update !== null) {
    const [out, inner] = update.p.shape;
    const inF = update.q.shape[1];
    const expected = baseWeightShape(layout, inF, out);
    if (update.q.shape[0] !== inner || rows !== expected[0] || cols !== expected[1]) {
      throw new RangeError(`${op}: stored weight is [${rows}, ${cols}] but the ${layout} update has P [${out}, ${inner}] and Q [${update.q.shape[0]}, ${inF}]`);
    }
    if (!Number.isFinite(update.scale)) throw new RangeError(`${op}: scale must be finite, got ${update.scale}`);
  }
  for (let i = 0; i < job.sampleRows.length; i++) {
    const t = job.sampleRows[i];
    if (!Number.isInteger(t) || t < 0 || t >= rows || (i > 0 && t <= job.sampleRows[i - 1])) {
      throw new RangeError(`${op}: sample rows must be sorted, distinct and in [0, ${rows}); got ${t} at position ${i}`);
    }
  }
  const doUpdate = update !== null && update.p.shape[1] > 0 && update.scale !== 0;
  const narrow = job.outDtype === 'F16' || job.outDtype === 'BF16';
  return { layout, doUpdate, measure: narrow && (doUpdate || job.inDtype !== job.outDtype) };
}

/** Rows per block for `blockBytes` of float32. */
export function blockRows(rows: number, cols: number, blockBytes: number): number {
  return Math.max(1, Math.min(rows, Math.floor(blockBytes / (4 * Math.max(1, cols)))));
}

/**
 * Stored bytes → a new float32 array (exact for f16/bf16; f64 rounds to nearest), never a view of
 * `bytes`, which a streaming caller reuses for the next block.
 */
export function storedToFloat32(bytes: Uint8Array, dtype: StoredFloat): Float32Array {
  const aligned = bytes.byteOffset % STORED_BYTES[dtype] === 0 ? bytes : Uint8Array.from(bytes);
  const values = bytesToFloat32(aligned, dtype, { file: '(stored block)', tensor: '(stored block)' });
  return dtype === 'F32' ? Float32Array.from(values) : values;
}

/** Float32 → stored bytes (round to nearest even for f16/bf16), and the stored values as float32 for a meter. */
export function float32ToStored(values: Float32Array, dtype: StoredFloat): { bytes: Uint8Array; stored: Float32Array } {
  if (dtype === 'F32') return { bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength), stored: values };
  if (dtype === 'F64') {
    const d = Float64Array.from(values);
    return { bytes: new Uint8Array(d.buffer), stored: values };
  }
  const bits = dtype === 'BF16' ? float32ToBfloat16(values) : float32ToFloat16(values);
  return { bytes: new Uint8Array(bits.buffer), stored: dtype === 'BF16' ? bfloat16ToFloat32(bits) : float16ToFloat32(bits) };
}

/** Columns [c0, c1) of a row-major rows × cols matrix, as a rows × (c1 − c0) copy. */
export function columnSlice(data: Float32Array, rows: number, cols: number, c0: number, c1: number): Float32Array {
  const width = c1 - c0;
  const out = new Float32Array(rows * width);
  for (let i = 0; i < rows; i++) out.set(data.subarray(i * cols + c0, i * cols + c1), i * width);
  return out;
}

/**
 * A `StoredWeightUpdater` on a `ProductBackend`: each block is decoded with the TypeScript decoders,
 * updated through `backend.addScaledProduct` on the block (linear: P's rows of the block; conv1d:
 * Q's columns of the block), sampled, encoded and measured with {@link DowncastMeter}.
 */
export function createBlockwiseUpdater(backend: ProductBackend, blockBytes = 4 * 1024 * 1024): StoredWeightUpdater {
  return {
    name: `blockwise ${backend.name}`,
    async run(job, io) {
      const { layout, doUpdate, measure } = checkStoredJob(job, 'blockwise updater');
      const [rows, cols] = job.shape;
      const meter = measure ? new DowncastMeter(job.outDtype) : null;
      const before = new Float32Array(job.sampleRows.length * cols);
      const after = new Float32Array(job.sampleRows.length * cols);
      const rowBytes = cols * STORED_BYTES[job.inDtype];
      const block = blockRows(rows, cols, blockBytes);
      const raw = new Uint8Array(block * rowBytes);
      let s = 0;
      if (rows === 0 || cols === 0) await io.write(new Uint8Array(0));
      for (let r0 = 0; r0 < rows && cols > 0; r0 += block) {
        const n = Math.min(block, rows - r0);
        const bytes = raw.subarray(0, n * rowBytes);
        await io.read(r0 * rowBytes, bytes);
        const data = storedToFloat32(bytes, job.inDtype);
        const first = s;
        while (s < job.sampleRows.length && job.sampleRows[s] < r0 + n) s++;
        for (let i = first; i < s; i++) before.set(data.subarray((job.sampleRows[i] - r0) * cols, (job.sampleRows[i] - r0 + 1) * cols), i * cols);
        if (doUpdate) {
          const u = job.update!;
          const inner = u.p.shape[1];
          const target = { shape: [n, cols] as [number, number], data };
          if (layout === 'linear') {
            await backend.addScaledProduct(target, layout, { shape: [n, inner], data: u.p.data.subarray(r0 * inner, (r0 + n) * inner) }, u.q, u.scale);
          } else {
            await backend.addScaledProduct(target, layout, u.p, { shape: [inner, n], data: columnSlice(u.q.data, inner, u.q.shape[1], r0, r0 + n) }, u.scale);
          }
        }
        for (let i = first; i < s; i++) after.set(data.subarray((job.sampleRows[i] - r0) * cols, (job.sampleRows[i] - r0 + 1) * cols), i * cols);
        const out = float32ToStored(data, job.outDtype);
        meter?.add(data, out.stored);
        await io.write(out.bytes);
      }
      return { before, after, ...(meter !== null ? { downcast: meter.report() } : {}) };
    },
  };
}
