/**
 * The fused base update on a weight as it is stored on disk: one onnxruntime graph per row block
 * widens the stored block to float32, adds scale·P·Q (`linear`) or scale·(P·Q)ᵀ (`conv1d`) with
 * one Gemm, rounds it back to the stored dtype and measures that rounding, all without the block
 * passing through a TypeScript loop. It is how `fedex aggregate` streams a checkpoint:
 *
 *   X (stored bits) ─BitCast─Cast─▶ C (f32) ─Gemm(P, Q, C)─▶ Yf (f32) ─Cast─BitCast─▶ Y (stored bits)
 *                                   └─Gather(rows)─▶ before      └─Gather(rows)─▶ after, rounding stats
 *
 * - bf16 and f16 travel as uint16 bits (onnxruntime-node has no bfloat16 tensors in JavaScript);
 *   BitCast (ONNX opset 26) reinterprets them and Cast widens exactly, so the float32 master values
 *   are the stored values; the way back is Cast's round-to-nearest-even.
 * - Only what is written comes back: onnxruntime-node copies every output into a new JavaScript
 *   buffer, so the block returns in its stored width (2 bytes for bf16), not as float32.
 * - `before`/`after`: the float32 values of the rows the exactness check samples, before the update
 *   and after it (before rounding), gathered in the graph.
 * - Rounding stats per block (max |x − stored(x)|, Σ(x − stored(x))², Σx², max relative error,
 *   values flushed to zero) are reductions in the graph, per row. A block whose stats are not finite
 *   (a NaN or ±Inf in the weight, or a value that overflows the stored dtype), or has a row so small
 *   that float32 squares underflow, is redone with a float32 output and measured by
 *   {@link DowncastMeter}, so such values are counted exactly as everywhere else.
 * - Blocks are read ahead and written behind: the next block's read and the last block's write run
 *   on libuv's threads while onnxruntime computes.
 */
import { encodeModel } from '../../graph/onnx/model.js';
import type { OnnxModel, OnnxNode, OnnxValueInfo } from '../../graph/onnx/model.js';
import type { Layout } from '../../core/lora.js';
import { prescaled } from '../../core/product.js';
import { DowncastMeter } from '../../formats/halfFloat.js';
import { blockRows, checkStoredJob, columnSlice, float32ToStored, STORED_BYTES } from '../../formats/storedUpdate.js';
import type { StoredFloat, StoredMatrixIo, StoredMatrixJob, StoredMatrixResult, StoredWeightUpdater } from '../../formats/storedUpdate.js';
import { createSession, ortTensor, runSession, SessionCache } from '../session.js';
import type { Device, OrtSession, OrtTensor } from '../session.js';

/** ONNX TensorProto.DataType codes. */
const ONNX = { F32: 1, U16: 4, F16: 10, F64: 11, BF16: 16 } as const;

/** One graph: how the block is stored, how it is written, and whether the Gemm is in it. */
interface GraphKey {
  readonly inDtype: StoredFloat;
  readonly outDtype: StoredFloat;
  readonly layout: Layout;
  readonly update: boolean;
  /** Rounding stats (only when writing bf16/f16). */
  readonly stats: boolean;
}

function elemOf(d: StoredFloat): OnnxValueInfo['elemType'] {
  return d === 'F32' ? 'float32' : d === 'F64' ? 'float64' : 'uint16';
}

const int = (value: number) => ({ kind: 'int' as const, value });

/** The ONNX model of one block update (exported for tests). */
export function storedUpdateModel(key: GraphKey): OnnxModel {
  const { inDtype, outDtype, layout, update, stats } = key;
  const nodes: OnnxNode[] = [];
  // X → C: the stored block as float32, exactly.
  if (inDtype === 'F32') nodes.push({ opType: 'Identity', inputs: ['X'], outputs: ['C'] });
  else if (inDtype === 'F64') nodes.push({ opType: 'Cast', inputs: ['X'], outputs: ['C'], attributes: { to: int(ONNX.F32) } });
  else {
    nodes.push(
      { opType: 'BitCast', inputs: ['X'], outputs: ['Xh'], attributes: { to: int(ONNX[inDtype]) } },
      { opType: 'Cast', inputs: ['Xh'], outputs: ['C'], attributes: { to: int(ONNX.F32) } },
    );
  }
  const linear = layout === 'linear';
  if (update) {
    nodes.push({
      opType: 'Gemm',
      inputs: linear ? ['P', 'Q', 'C'] : ['Q', 'P', 'C'],
      outputs: ['Yf'],
      attributes: linear ? {} : { transA: int(1), transB: int(1) },
    });
  } else {
    nodes.push({ opType: 'Identity', inputs: ['C'], outputs: ['Yf'] });
  }
  nodes.push(
    { opType: 'Gather', inputs: ['C', 'R'], outputs: ['before'], attributes: { axis: int(0) } },
    { opType: 'Gather', inputs: ['Yf', 'R'], outputs: ['after'], attributes: { axis: int(0) } },
  );
  // Yf → Y in the stored dtype.
  if (outDtype === 'F32') nodes.push({ opType: 'Identity', inputs: ['Yf'], outputs: ['Y'] });
  else if (outDtype === 'F64') nodes.push({ opType: 'Cast', inputs: ['Yf'], outputs: ['Y'], attributes: { to: int(ONNX.F64) } });
  else {
    nodes.push(
      { opType: 'Cast', inputs: ['Yf'], outputs: ['Yh'], attributes: { to: int(ONNX[outDtype]) } },
      { opType: 'BitCast', inputs: ['Yh'], outputs: ['Y'], attributes: { to: int(ONNX.U16) } },
    );
  }
  const outputs: OnnxValueInfo[] = [
    { name: 'Y', elemType: elemOf(outDtype), shape: ['rows', 'cols'] },
    { name: 'before', elemType: 'float32', shape: ['sampled', 'cols'] },
    { name: 'after', elemType: 'float32', shape: ['sampled', 'cols'] },
  ];
  if (stats) {
    // Reduced along each row (onnxruntime's fast, threaded path), finished over the block's rows in TypeScript.
    const reduce = (op: string, input: string, output: string): OnnxNode => ({ opType: op, inputs: [input, 'axis1'], outputs: [output], attributes: { keepdims: int(0) } });
    nodes.push(
      { opType: 'Cast', inputs: ['Yh'], outputs: ['S'], attributes: { to: int(ONNX.F32) } },
      { opType: 'Sub', inputs: ['Yf', 'S'], outputs: ['D'] },
      { opType: 'Abs', inputs: ['D'], outputs: ['AD'] },
      reduce('ReduceMax', 'AD', 'maxAbs'),
      reduce('ReduceSumSquare', 'D', 'errSq'),
      reduce('ReduceSumSquare', 'Yf', 'normSq'),
      // |x − s| / max(|x|, tiny): 0 for x = 0, exactly 1 where a non-zero x was stored as 0 (RNE
      // never rounds away from zero past |x|), so Σ floor(ratio) counts the values flushed to zero.
      { opType: 'Abs', inputs: ['Yf'], outputs: ['AX'] },
      { opType: 'Max', inputs: ['AX', 'tiny'], outputs: ['den'] },
      { opType: 'Div', inputs: ['AD', 'den'], outputs: ['rel'] },
      reduce('ReduceMax', 'rel', 'maxRel'),
      { opType: 'Floor', inputs: ['rel'], outputs: ['flushed'] },
      reduce('ReduceSum', 'flushed', 'underflow'),
    );
    for (const name of ['maxAbs', 'errSq', 'normSq', 'maxRel', 'underflow']) outputs.push({ name, elemType: 'float32', shape: ['rows'] });
  }
  const inputs: OnnxValueInfo[] = [{ name: 'X', elemType: elemOf(inDtype), shape: ['rows', 'cols'] }];
  if (update) {
    inputs.push(
      { name: 'P', elemType: 'float32', shape: linear ? ['rows', 'inner'] : ['cols', 'inner'] },
      { name: 'Q', elemType: 'float32', shape: linear ? ['inner', 'cols'] : ['inner', 'rows'] },
    );
  }
  inputs.push({ name: 'R', elemType: 'int64', shape: ['sampled'] });
  // The smallest positive float32 (a subnormal): every non-zero |x| is at least this.
  const tiny = new Uint8Array(new Float32Array([1.401298464324817e-45]).buffer);
  return {
    opset: 26,
    producerName: 'fedex-stored-update',
    graph: {
      name: `stored_update_${inDtype}_${outDtype}_${layout}${update ? '' : '_cast'}${stats ? '_stats' : ''}`,
      nodes,
      inputs,
      outputs,
      initializers: stats ? [{ name: 'tiny', elemType: 'float32', dims: [], raw: tiny }, { name: 'axis1', elemType: 'int64', dims: [1], raw: new Uint8Array(new BigInt64Array([1n]).buffer) }] : [],
    },
  };
}

export interface StoredUpdateKernelOptions {
  readonly device?: Device;
  readonly intraOpThreads?: number;
  /** Float32 bytes per block (default 1 MiB: the graph's dozen passes over a block stay in cache; 1–2 MiB measured fastest). */
  readonly blockBytes?: number;
}

const DEFAULT_BLOCK_BYTES = 1024 * 1024;

function storedTensor(dtype: StoredFloat, bytes: Uint8Array, dims: readonly number[]): OrtTensor {
  const { buffer, byteOffset, byteLength } = bytes;
  if (dtype === 'F32') return ortTensor('float32', new Float32Array(buffer, byteOffset, byteLength / 4), dims);
  if (dtype === 'F64') return ortTensor('float64', new Float64Array(buffer, byteOffset, byteLength / 8), dims);
  return ortTensor('uint16', new Uint16Array(buffer, byteOffset, byteLength / 2), dims);
}

function bytesOf(t: OrtTensor): Uint8Array {
  const d = t.data as Float32Array | Float64Array | Uint16Array;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/**
 * Per-row Σx² below this (with some rounding in the row) may have lost its squares to float32
 * underflow (x² < 2⁻¹²⁶ for |x| < 1e-19): such a block is measured the exact way instead.
 */
const MIN_ROW_NORM_SQ = 2 ** -80;

/** True when some row rounded something but its float32 Σx² is too small to trust. */
function underflowRisk(maxAbs: OrtTensor, normSq: OrtTensor): boolean {
  const m = maxAbs.data as Float32Array;
  const n = normSq.data as Float32Array;
  for (let i = 0; i < m.length; i++) if (m[i] > 0 && n[i] < MIN_ROW_NORM_SQ) return true;
  return false;
}

/** Max (NaN if any is NaN) or float64 sum of a per-row reduction. */
function finish(t: OrtTensor, how: 'max' | 'sum'): number {
  const d = t.data as Float32Array;
  let acc = 0;
  for (let i = 0; i < d.length; i++) acc = how === 'sum' ? acc + d[i] : d[i] > acc || Number.isNaN(d[i]) ? d[i] : acc;
  return acc;
}

/**
 * Runs stored row blocks of one 2-D weight through the graph; sessions are cached per
 * (stored dtype, written dtype, layout, update?) and built on first use.
 */
export class StoredUpdateKernel implements StoredWeightUpdater {
  readonly name = 'onnxruntime';
  private readonly sessions = new SessionCache();

  constructor(private readonly options: StoredUpdateKernelOptions = {}) {
    const b = options.blockBytes;
    if (b !== undefined && (!Number.isInteger(b) || b <= 0)) throw new RangeError(`StoredUpdateKernel: blockBytes must be a positive integer, got ${b}`);
  }

  private session(key: GraphKey): Promise<OrtSession> {
    const id = `${key.inDtype}/${key.outDtype}/${key.layout}/${key.update}/${key.stats}`;
    return this.sessions.get(id, () => createSession(encodeModel(storedUpdateModel(key)), { device: this.options.device, intraOpThreads: this.options.intraOpThreads }));
  }

  /**
   * Streams one stored matrix through the update: reads it block by block through `io.read`,
   * writes the result in `outDtype` through `io.write` in order, and returns the sampled rows and
   * the rounding report.
   */
  async run(job: StoredMatrixJob, io: StoredMatrixIo): Promise<StoredMatrixResult> {
    const { layout, doUpdate, measure } = checkStoredJob(job, 'StoredUpdateKernel.run');
    const [rows, cols] = job.shape;
    // The update the graph applies (null when there is none, or it is zero).
    const update = doUpdate ? job.update : null;
    const key: GraphKey = { inDtype: job.inDtype, outDtype: job.outDtype, layout, update: doUpdate, stats: measure };
    const meter = measure ? new DowncastMeter(job.outDtype) : null;
    const before = new Float32Array(job.sampleRows.length * cols);
    const after = new Float32Array(job.sampleRows.length * cols);
    if (rows === 0 || cols === 0) {
      await io.write(new Uint8Array(0));
      return { before, after, ...(meter !== null ? { downcast: meter.report() } : {}) };
    }

    const session = await this.session(key);
    // The scale cannot be a Gemm attribute of a cached graph: P (the small factor) is pre-scaled.
    const sp = update === null ? null : prescaled(update.p.data, update.scale);
    const inner = update?.p.shape[1] ?? 0;
    const rowBytes = cols * STORED_BYTES[job.inDtype];
    const block = blockRows(rows, cols, this.options.blockBytes ?? DEFAULT_BLOCK_BYTES);
    // Two read buffers: one being computed on, one being filled ahead.
    const buffers = [new Uint8Array(block * rowBytes), new Uint8Array(rows > block ? block * rowBytes : 0)];
    const readBlock = (b: number): Promise<Uint8Array> => {
      const r0 = b * block;
      const n = Math.min(block, rows - r0);
      const into = buffers[b % 2].subarray(0, n * rowBytes);
      return io.read(r0 * rowBytes, into).then(() => into);
    };
    const blocks = Math.ceil(rows / block);
    let next: Promise<Uint8Array> | null = readBlock(0);
    let writing: Promise<void> = Promise.resolve();
    let sampleIdx = 0;
    try {
      for (let b = 0; b < blocks; b++) {
        const r0 = b * block;
        const n = Math.min(block, rows - r0);
        const raw = await next!;
        next = b + 1 < blocks ? readBlock(b + 1) : null;
        // A failed read ahead is reported when awaited; until then it must not count as unhandled.
        next?.catch(() => undefined);
        const first = sampleIdx;
        while (sampleIdx < job.sampleRows.length && job.sampleRows[sampleIdx] < r0 + n) sampleIdx++;
        const local = BigInt64Array.from(job.sampleRows.slice(first, sampleIdx), (t) => BigInt(t - r0));
        const feeds: Record<string, OrtTensor> = { X: storedTensor(job.inDtype, raw, [n, cols]), R: ortTensor('int64', local, [local.length]) };
        if (update !== null && sp !== null) {
          const q = update.q.data;
          const inF = update.q.shape[1];
          if (layout === 'linear') {
            feeds.P = ortTensor('float32', sp.subarray(r0 * inner, (r0 + n) * inner), [n, inner]);
            feeds.Q = ortTensor('float32', q, [inner, inF]);
          } else {
            feeds.P = ortTensor('float32', sp, [update.p.shape[0], inner]);
            feeds.Q = ortTensor('float32', n === inF ? q : columnSlice(q, inner, inF, r0, r0 + n), [inner, n]);
          }
        }
        const out = await runSession(session, feeds);
        before.set(out.before.data as Float32Array, first * cols);
        after.set(out.after.data as Float32Array, first * cols);
        let bytes = bytesOf(out.Y);
        if (meter !== null) {
          const r = {
            count: n * cols,
            maxAbs: finish(out.maxAbs, 'max'),
            errSq: finish(out.errSq, 'sum'),
            normSq: finish(out.normSq, 'sum'),
            maxRel: finish(out.maxRel, 'max'),
            overflow: 0,
            underflow: finish(out.underflow, 'sum'),
          };
          // NaN, ±Inf or an overflow in this block make a reduction non-finite, and tiny weights can
          // underflow float32 squares: such a block is rounded and measured the exact way.
          if (Object.values(r).every(Number.isFinite) && !underflowRisk(out.maxAbs, out.normSq)) meter.addReduced(r);
          else bytes = await this.exactBlock(key, feeds, meter);
        }
        await writing;
        writing = io.write(bytes);
        writing.catch(() => undefined);
      }
      await writing;
    } catch (err) {
      await writing.catch(() => undefined);
      await next?.catch(() => undefined);
      throw err;
    }
    return { before, after, ...(meter !== null ? { downcast: meter.report() } : {}) };
  }

  /** Redoes a block with a float32 output and rounds it with the TypeScript encoder and meter. */
  private async exactBlock(key: GraphKey, feeds: Record<string, OrtTensor>, meter: DowncastMeter): Promise<Uint8Array> {
    const session = await this.session({ ...key, outDtype: 'F32', stats: false });
    const yf = (await runSession(session, feeds)).Y.data as Float32Array;
    const out = float32ToStored(yf, key.outDtype);
    meter.add(yf, out.stored);
    return out.bytes;
  }

  async dispose(): Promise<void> {
    await this.sessions.dispose();
  }
}

/** Creates the stored-weight update kernel (sessions are built lazily). */
export function createStoredUpdateKernel(options: StoredUpdateKernelOptions = {}): StoredUpdateKernel {
  return new StoredUpdateKernel(options);
}
