import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createStoredUpdateKernel } from '../../../src/runtime/kernels/storedUpdate.js';
import { createBlockwiseUpdater } from '../../helpers/blockwiseUpdater.js';
import type { StoredFloat, StoredMatrixIo, StoredWeightUpdater } from '../../../src/formats/storedUpdate.js';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import type { Layout } from '../../../src/core/lora.js';
import { productFixture } from '../../helpers/productFixture.js';
import { refMatmul, refTranspose } from '../../core/reference.js';
import type { Matrix } from '../../../src/core/tensor.js';
import { createRng, randomMatrix } from '../../../src/core/random.js';
import {
  bfloat16ToFloat32,
  DowncastMeter,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
} from '../../../src/formats/halfFloat.js';

/** Encodes float32 values as the stored bytes of `dtype` (the TypeScript encoders: the reference). */
function encode(values: Float32Array, dtype: StoredFloat): Uint8Array {
  const arr = dtype === 'F32' ? Float32Array.from(values) : dtype === 'F64' ? Float64Array.from(values) : dtype === 'BF16' ? float32ToBfloat16(values) : float32ToFloat16(values);
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

/** Decodes stored bytes to float32 (exact widening). */
function decode(bytes: Uint8Array, dtype: StoredFloat): Float32Array {
  const copy = new Uint8Array(bytes).buffer;
  if (dtype === 'F32') return new Float32Array(copy);
  if (dtype === 'F64') return Float32Array.from(new Float64Array(copy));
  const bits = new Uint16Array(copy);
  return dtype === 'BF16' ? bfloat16ToFloat32(bits) : float16ToFloat32(bits);
}

/** In-memory io over stored bytes; records the order and sizes of writes. */
function memoryIo(stored: Uint8Array): StoredMatrixIo & { written: Uint8Array[]; output(): Uint8Array } {
  const written: Uint8Array[] = [];
  return {
    written,
    async read(start, into) {
      into.set(stored.subarray(start, start + into.byteLength));
    },
    async write(bytes) {
      written.push(Uint8Array.from(bytes));
    },
    output() {
      const total = written.reduce((a, b) => a + b.byteLength, 0);
      const out = new Uint8Array(total);
      let at = 0;
      for (const w of written) {
        out.set(w, at);
        at += w.byteLength;
      }
      return out;
    },
  };
}

/** Float64 reference of W + s·P·Q in the stored layout. */
function reference(layout: Layout, w: Float32Array, p: Matrix, q: Matrix, scale: number): Float64Array {
  const pq = refMatmul(p, q);
  const laid = layout === 'linear' ? pq : refTranspose(pq, p.shape[0], q.shape[1]);
  return laid.map((u, i) => w[i] + scale * u);
}

/** Half a unit in the last place of `dtype` at |x| (an upper bound on one rounding to it). */
function halfUlp(x: number, dtype: StoredFloat): number {
  const mant = dtype === 'F32' || dtype === 'F64' ? 23 : dtype === 'BF16' ? 7 : 10;
  const minExp = dtype === 'F16' ? -14 : -126;
  const e = Math.max(minExp, Math.floor(Math.log2(Math.max(Math.abs(x), 2 ** minExp))));
  return 2 ** (e - mant - 1);
}

describe('stored-weight update (onnxruntime graph: widen, Gemm, round, measure)', () => {
  // The onnxruntime graph (whole matrix in one block; blocks of 3 rows of 17) and the TypeScript
  // reference on the TypeScript backend (blocks of 2 rows): every check below holds for each.
  const kernels: StoredWeightUpdater[] = [
    createStoredUpdateKernel({ intraOpThreads: 1 }),
    createStoredUpdateKernel({ intraOpThreads: 2, blockBytes: 3 * 17 * 4 }),
    createBlockwiseUpdater(createTypeScriptBackend(), 2 * 23 * 4),
  ];
  after(async () => {
    for (const k of kernels) await k.dispose?.();
  });

  const dtypes: StoredFloat[] = ['BF16', 'F16', 'F32', 'F64'];
  for (const layout of ['linear', 'conv1d'] as const) {
    for (const inDtype of dtypes) {
      for (const outDtype of [...new Set<StoredFloat>([inDtype, 'F32'])]) {
        test(`${layout} ${inDtype} → ${outDtype}: result within one rounding of the float64 reference; sampled rows; rounding report`, async () => {
          const [out, inF, inner] = layout === 'linear' ? [23, 17, 6] : [17, 23, 6];
          const { p, q, w } = productFixture(layout, out, inF, inner, inDtype.length * 7 + outDtype.length + (layout === 'linear' ? 0 : 100));
          // F64 weights get digits float32 cannot hold, so the widening to float32 is a real rounding.
          const stored = inDtype === 'F64' ? new Uint8Array(Float64Array.from(w.data, (x, i) => x + 1e-10 * Math.sin(i)).buffer) : encode(w.data, inDtype);
          const w0 = decode(stored, inDtype);
          const scale = 0.37;
          const ref = reference(layout, w0, p, q, scale);
          const [rows, cols] = w.shape;
          const sampleRows = [0, 2, 3, 9, rows - 1];
          for (const kernel of kernels) {
            const io = memoryIo(stored);
            const r = await kernel.run({ shape: [rows, cols], inDtype, outDtype, update: { form: 'factored', p, q, scale, layout }, sampleRows }, io);
            const got = decode(io.output(), outDtype);
            assert.equal(got.length, rows * cols);
            let maxErr = 0;
            for (let i = 0; i < got.length; i++) {
              // float32 Gemm round-off (≤ 1e-6 relative to the update) plus one rounding to the stored dtype.
              const bound = halfUlp(ref[i], outDtype) + 1e-6 * (Math.abs(ref[i]) + 1);
              maxErr = Math.max(maxErr, Math.abs(got[i] - ref[i]) / bound);
            }
            assert.ok(maxErr <= 1, `result off by ${maxErr} of the bound`);
            // Sampled rows: before = the stored values widened exactly; after = the float32 result, which rounds to what was written.
            sampleRows.forEach((t, i) => {
              assert.deepEqual(r.before.subarray(i * cols, (i + 1) * cols), w0.subarray(t * cols, (t + 1) * cols));
              const afterRow = r.after.subarray(i * cols, (i + 1) * cols);
              assert.deepEqual(decode(encode(afterRow, outDtype), outDtype), got.subarray(t * cols, (t + 1) * cols), `row ${t} after the update rounds to the written row`);
            });
            if (outDtype === 'F16' || outDtype === 'BF16') {
              assert.ok(r.downcast !== undefined);
              assert.equal(r.downcast.count, rows * cols);
              assert.ok(r.downcast.maxAbsError > 0 && r.downcast.relativeError > 0);
            } else {
              assert.equal(r.downcast, undefined);
            }
          }
        });
      }
    }
  }

  test('the graph rounds exactly like the TypeScript encoders (bf16 and f16 bits, ties, subnormals), and its report matches DowncastMeter', async () => {
    const rng = createRng(5);
    const cols = 16;
    const special = [0, -0, 1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 2 ** -24, 2 ** -25, 2 ** -26, 3 * 2 ** -26, 1e-30, 2 ** -133, -(2 ** -140)];
    const values = new Float32Array(cols * 12);
    values.set(special);
    for (let i = special.length; i < values.length; i++) values[i] = rng.gaussian() * 10 ** Math.floor(rng.next() * 12 - 9);
    for (const [outDtype, kernel] of [['BF16', kernels[1]], ['F16', kernels[1]], ['BF16', kernels[2]], ['F16', kernels[2]]] as const) {
      const io = memoryIo(encode(values, 'F32'));
      const rows = values.length / cols;
      const r = await kernel.run({ shape: [rows, cols], inDtype: 'F32', outDtype, update: null, sampleRows: [] }, io);
      const expected = encode(values, outDtype);
      assert.deepEqual(io.output(), expected, `${outDtype} bits`);
      const meter = new DowncastMeter(outDtype);
      meter.add(values, decode(expected, outDtype));
      const want = meter.report();
      const got = r.downcast!;
      assert.equal(got.count, want.count);
      assert.equal(got.maxAbsError, want.maxAbsError);
      assert.equal(got.underflowCount, want.underflowCount);
      assert.equal(got.overflowCount, want.overflowCount);
      assert.ok(Math.abs(got.maxRelError - want.maxRelError) <= 1e-6 * want.maxRelError, `maxRelError ${got.maxRelError} vs ${want.maxRelError}`);
      assert.ok(Math.abs(got.relativeError - want.relativeError) <= 1e-4 * want.relativeError, `relativeError ${got.relativeError} vs ${want.relativeError}`);
      if (outDtype === 'F16') assert.ok(want.underflowCount > 0, 'the fixture has values that flush to zero in f16');
    }
  });

  test('NaN, ±Inf and values that overflow the stored dtype are rounded and counted exactly as the TypeScript meter does', async () => {
    const cols = 8;
    const values = Float32Array.from({ length: cols * 6 }, (_, i) => Math.sin(i) * 100);
    values[3] = NaN;
    values[10] = Infinity;
    values[20] = 70000; // overflows f16
    values[41] = -1e-9; // flushes to zero in f16
    for (const kernel of kernels) {
      const io = memoryIo(encode(values, 'F32'));
      const r = await kernel.run({ shape: [6, cols], inDtype: 'F32', outDtype: 'F16', update: null, sampleRows: [] }, io);
      const bits = new Uint16Array(io.output().buffer);
      const ref = float32ToFloat16(values);
      assert.deepEqual(bits, ref);
      const meter = new DowncastMeter('F16');
      meter.add(values, float16ToFloat32(ref));
      const want = meter.report();
      assert.equal(r.downcast!.overflowCount, 1);
      assert.equal(r.downcast!.underflowCount, want.underflowCount);
      assert.equal(r.downcast!.maxAbsError, want.maxAbsError);
      assert.equal(r.downcast!.count, want.count);
    }
  });

  test('the rounding report over many blocks (fast path and exact path mixed) matches DowncastMeter: no flushes, then tiny weights', async () => {
    // 40 rows of 17 in blocks of 3 rows (kernels[1]); one row holds a NaN, so its block goes the exact way.
    const rng = createRng(8);
    const normal = Float32Array.from({ length: 40 * 17 }, () => rng.gaussian() * 0.02 + 0.05);
    normal[7 * 17 + 3] = NaN;
    // Weights around 1e-21: float32 squares underflow, so every block must be measured the exact way.
    const tiny = Float32Array.from({ length: 40 * 17 }, () => rng.gaussian() * 1e-21);
    for (const [values, outDtype] of [[normal, 'BF16'], [normal, 'F16'], [tiny, 'BF16']] as const) {
      const io = memoryIo(encode(values, 'F32'));
      const r = await kernels[1].run({ shape: [40, 17], inDtype: 'F32', outDtype, update: null, sampleRows: [] }, io);
      const expected = encode(values, outDtype);
      assert.deepEqual(io.output(), expected);
      const meter = new DowncastMeter(outDtype);
      meter.add(values, decode(expected, outDtype));
      const want = meter.report();
      const got = r.downcast!;
      assert.equal(want.underflowCount, 0, 'no value flushes to zero here, so maxRelError is a real comparison');
      assert.deepEqual([got.count, got.maxAbsError, got.underflowCount, got.overflowCount], [want.count, want.maxAbsError, want.underflowCount, want.overflowCount]);
      assert.ok(want.maxRelError > 0 && Math.abs(got.maxRelError - want.maxRelError) <= 1e-6 * want.maxRelError, `maxRelError ${got.maxRelError} vs ${want.maxRelError}`);
      assert.ok(want.relativeError > 0 && Math.abs(got.relativeError - want.relativeError) <= 1e-4 * want.relativeError, `relativeError ${got.relativeError} vs ${want.relativeError}`);
    }
  });

  test('a zero-size weight writes one empty piece', async () => {
    for (const kernel of kernels) {
      const io = memoryIo(new Uint8Array(0));
      await kernel.run({ shape: [0, 5], inDtype: 'BF16', outDtype: 'BF16', update: null, sampleRows: [] }, io);
      assert.deepEqual(io.written.map((w) => w.byteLength), [0]);
    }
  });

  test('no update and the same dtype: bytes come back unchanged and nothing is measured', async () => {
    const w = randomMatrix(9, 5, createRng(2));
    const stored = encode(w.data, 'BF16');
    const io = memoryIo(stored);
    const r = await kernels[1].run({ shape: [9, 5], inDtype: 'BF16', outDtype: 'BF16', update: null, sampleRows: [4] }, io);
    assert.deepEqual(io.output(), stored);
    assert.equal(r.downcast, undefined);
    assert.deepEqual(r.before, decode(stored, 'BF16').subarray(20, 25));
  });

  test('writes come in order, in blocks, and a failing read or write is reported (no unhandled rejection)', async () => {
    const { p, q, w } = productFixture('linear', 40, 17, 3, 9);
    const stored = encode(w.data, 'F32');
    const io = memoryIo(stored);
    await kernels[1].run({ shape: [40, 17], inDtype: 'F32', outDtype: 'F32', update: { form: 'factored', p, q, scale: 1, layout: 'linear' }, sampleRows: [] }, io);
    assert.ok(io.written.length > 5, `${io.written.length} blocks`);
    const whole = memoryIo(stored);
    await kernels[0].run({ shape: [40, 17], inDtype: 'F32', outDtype: 'F32', update: { form: 'factored', p, q, scale: 1, layout: 'linear' }, sampleRows: [] }, whole);
    assert.equal(whole.written.length, 1);
    // The blocks, in the order written, are the one-block result (to float32 round-off: onnxruntime's
    // Gemm may sum a 3-row block in another order than a 40-row one).
    const [blocked, once] = [decode(io.output(), 'F32'), decode(whole.output(), 'F32')];
    assert.equal(blocked.length, once.length);
    blocked.forEach((x, i) => assert.ok(Math.abs(x - once[i]) <= 4e-7 * Math.abs(once[i]) + 1e-12, `element ${i}: ${x} vs ${once[i]}`));
    const failRead: StoredMatrixIo = { read: async (start: number) => {
      if (start > 0) throw new Error('disk gone');
    }, write: async () => undefined };
    await assert.rejects(kernels[1].run({ shape: [40, 17], inDtype: 'F32', outDtype: 'F32', update: null, sampleRows: [] }, failRead), /disk gone/);
    const failWrite: StoredMatrixIo = { read: async () => undefined, write: async () => {
      throw new Error('disk full');
    } };
    await assert.rejects(kernels[1].run({ shape: [40, 17], inDtype: 'F32', outDtype: 'F32', update: null, sampleRows: [] }, failWrite), /disk full/);
  });

  test('bad jobs name what is wrong', async () => {
    const { p, q } = productFixture('linear', 4, 5, 2, 1);
    const io = memoryIo(new Uint8Array(4 * 5 * 4));
    await assert.rejects(kernels[0].run({ shape: [5, 4], inDtype: 'F32', outDtype: 'F32', update: { form: 'factored', p, q, scale: 1, layout: 'linear' }, sampleRows: [] }, io), /stored weight is \[5, 4\] but the linear update/);
    await assert.rejects(kernels[0].run({ shape: [4, 5], inDtype: 'F32', outDtype: 'F32', update: null, sampleRows: [2, 1] }, io), /sample rows must be sorted/);
    await assert.rejects(kernels[0].run({ shape: [4, 5], inDtype: 'F32', outDtype: 'F32', update: { form: 'factored', p, q, scale: NaN, layout: 'linear' }, sampleRows: [] }, io), /scale must be finite/);
  });
});
