// The TypeScript reference of a `StoredWeightUpdater` (src/formats/storedUpdate.ts): each block is
// decoded with the TypeScript decoders, updated through a `ProductBackend`, sampled, encoded and
// measured with `DowncastMeter`. The onnxruntime graph production runs
// (src/runtime/kernels/storedUpdate.ts) is held to the same checks; the streaming-aggregation tests
// use this one to inject faults block by block or to run on the TypeScript backend.
import type { ProductBackend } from '../../src/core/product.js';
import { DowncastMeter } from '../../src/formats/halfFloat.js';
import { bytesToFloat32 } from '../../src/formats/safetensors.js';
import { blockRows, checkStoredJob, columnSlice, float32ToStored, STORED_BYTES } from '../../src/formats/storedUpdate.js';
import type { StoredFloat, StoredWeightUpdater } from '../../src/formats/storedUpdate.js';

/**
 * Stored bytes → a new float32 array (exact for f16/bf16; f64 rounds to nearest), never a view of
 * `bytes`, which the updater reuses for the next block.
 */
function storedToFloat32(bytes: Uint8Array, dtype: StoredFloat): Float32Array {
  const aligned = bytes.byteOffset % STORED_BYTES[dtype] === 0 ? bytes : Uint8Array.from(bytes);
  const values = bytesToFloat32(aligned, dtype, { file: '(stored block)', tensor: '(stored block)' });
  return dtype === 'F32' ? Float32Array.from(values) : values;
}

/**
 * A `StoredWeightUpdater` on a `ProductBackend`: each block is decoded with the TypeScript decoders,
 * updated through `backend.addScaledProduct` on the block (linear: P's rows of the block; conv1d:
 * Q's columns of the block), sampled, encoded and measured with `DowncastMeter`.
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
