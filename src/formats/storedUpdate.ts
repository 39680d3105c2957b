/**
 * Updating a weight as it is stored: the seam between streaming aggregation (which reads and writes
 * safetensors) and what computes W0 + s·P·Q block by block. `StoredWeightUpdater` is that seam;
 * src/runtime/kernels/storedUpdate.ts implements it as one onnxruntime graph per block; its tests
 * hold a TypeScript reference on a `ProductBackend` (test/helpers/blockwiseUpdater.ts) to the same checks.
 *
 * Semantics an updater follows: the stored block is widened exactly to float32 (f64 rounds), the
 * update is added in float32, the float32 result is rounded to the written dtype (round to nearest
 * even), and that rounding is measured (a {@link DowncastReport}) whenever it can lose something: the
 * written dtype is f16/bf16 and the weight was updated or changes dtype.
 */
import { baseWeightShape, type Layout } from '../core/lora.js';
import type { FactoredUpdate } from '../core/residual.js';
import {
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
} from './halfFloat.js';
import type { DowncastReport } from './halfFloat.js';

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
