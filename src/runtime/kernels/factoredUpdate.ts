/**
 * The onnxruntime `ProductBackend`: target += s·P·Q (`linear`) or target += s·(P·Q)ᵀ (`conv1d`) as
 * ONE Gemm per row block, written in place into the target's buffer.
 *
 * - One tiny graph per layout, symbolic dims, session cached per backend: `linear` is
 *   Y = Gemm(P, Q, C) (alpha = beta = 1); `conv1d` is Y = Gemm(Q, P, C, transA = 1, transB = 1),
 *   i.e. Qᵀ·Pᵀ = (P·Q)ᵀ, never transposing anything in memory.
 * - The scale cannot be a Gemm attribute of a cached graph, so P (out × inner, the small factor) is
 *   pre-scaled in float32: out·inner multiplications against out·inner·in for the product, and the
 *   one extra rounding of s·p is float32 round-off of the update, as everywhere else.
 * - In place: C and the preallocated output Y are views of the same buffer. onnxruntime's CPU Gemm
 *   copies C into Y element by element and then runs sgemm with beta = 1 on Y, so the aliasing is
 *   safe there (checked against a float64 reference in test/runtime/kernels/factoredUpdate.test.ts).
 * - Row blocks: W0 is updated a block of stored rows at a time (a contiguous view of the target;
 *   for `linear` a view of s·P's rows, for `conv1d` a copy of Q's matching columns). Blocks of a
 *   few MiB are faster than one call (see `blockBytes`) and bound the working set of a huge W0.
 */
import { encodeModel } from '../../graph/onnx/model.js';
import type { OnnxModel } from '../../graph/onnx/model.js';
import { checkProductShapes, prescaled } from '../../core/product.js';
import { columnSlice } from '../../formats/storedUpdate.js';
import type { ProductBackend } from '../../core/product.js';
import type { Layout } from '../../core/lora.js';
import type { Matrix } from '../../core/tensor.js';
import { createSession, ortTensor, runSession, SessionCache } from '../session.js';
import type { Device, OrtSession } from '../session.js';

/** Options of the onnxruntime product backend. */
export interface OrtProductBackendOptions {
  readonly device?: Device;
  /** Threads for the Gemm (onnxruntime's default: all cores). */
  readonly intraOpThreads?: number;
  /** Stored rows of the target per Gemm call; overrides `blockBytes`. */
  readonly rowBlock?: number;
  /**
   * Target bytes per Gemm call when `rowBlock` is not given (default 4 MiB). onnxruntime's Gemm first
   * copies C into Y and then accumulates into Y: on a block that stays in cache that is one pass over
   * memory instead of two (4096×4096, inner 48, 2 threads: ≈ 20 ms in 4 MiB blocks, ≈ 50 ms whole).
   */
  readonly blockBytes?: number;
}

const DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024;

/** The ONNX model of the fused update for one layout (inputs P, Q, C; output Y; symbolic dims). */
export function factoredUpdateModel(layout: Layout): OnnxModel {
  // Dims: rows = stored rows of the target block, cols = stored columns, inner = k·r.
  const linear = layout === 'linear';
  return {
    opset: 18,
    producerName: 'fedex-factored-update',
    graph: {
      name: `factored_update_${layout}`,
      nodes: [
        {
          opType: 'Gemm',
          name: 'fused_update',
          inputs: linear ? ['P', 'Q', 'C'] : ['Q', 'P', 'C'],
          outputs: ['Y'],
          attributes: linear ? {} : { transA: { kind: 'int', value: 1 }, transB: { kind: 'int', value: 1 } },
        },
      ],
      inputs: [
        { name: 'P', elemType: 'float32', shape: linear ? ['rows', 'inner'] : ['cols', 'inner'] },
        { name: 'Q', elemType: 'float32', shape: linear ? ['inner', 'cols'] : ['inner', 'rows'] },
        { name: 'C', elemType: 'float32', shape: ['rows', 'cols'] },
      ],
      outputs: [{ name: 'Y', elemType: 'float32', shape: ['rows', 'cols'] }],
    },
  };
}

/** The onnxruntime implementation of `ProductBackend`; create with `createOrtProductBackend`. */
export class OrtProductBackend implements ProductBackend {
  readonly name = 'onnxruntime';
  private readonly sessions = new SessionCache();

  constructor(private readonly options: OrtProductBackendOptions = {}) {
    for (const key of ['rowBlock', 'blockBytes'] as const) {
      const v = options[key];
      if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw new RangeError(`OrtProductBackend: ${key} must be a positive integer, got ${v}`);
    }
  }

  private session(layout: Layout): Promise<OrtSession> {
    return this.sessions.get(layout, () => createSession(encodeModel(factoredUpdateModel(layout)), { device: this.options.device, intraOpThreads: this.options.intraOpThreads }));
  }

  async addScaledProduct(target: Matrix<Float32Array>, layout: Layout, p: Matrix<Float32Array>, q: Matrix<Float32Array>, scale: number): Promise<void> {
    checkProductShapes(target, layout, p, q, scale, 'OrtProductBackend.addScaledProduct');
    const [out, inner] = p.shape;
    const inF = q.shape[1];
    const [rows, cols] = target.shape;
    if (inner === 0 || scale === 0 || rows === 0 || cols === 0) return;
    const session = await this.session(layout);
    const sp = prescaled(p.data, scale);
    const block = Math.min(rows, this.options.rowBlock ?? Math.max(1, Math.floor((this.options.blockBytes ?? DEFAULT_BLOCK_BYTES) / (4 * cols))));
    for (let r0 = 0; r0 < rows; r0 += block) {
      const r1 = Math.min(rows, r0 + block);
      const n = r1 - r0;
      const view = target.data.subarray(r0 * cols, r1 * cols);
      const c = ortTensor('float32', view, [n, cols]);
      const y = ortTensor('float32', view, [n, cols]);
      const feeds = layout === 'linear'
        ? { P: ortTensor('float32', sp.subarray(r0 * inner, r1 * inner), [n, inner]), Q: ortTensor('float32', q.data, [inner, inF]), C: c }
        : { P: ortTensor('float32', sp, [out, inner]), Q: ortTensor('float32', n === inF ? q.data : columnSlice(q.data, inner, inF, r0, r1), [inner, n]), C: c };
      await runSession(session, feeds, { Y: y });
    }
  }

  async dispose(): Promise<void> {
    await this.sessions.dispose();
  }
}

/** Creates the onnxruntime product backend (sessions are built lazily, one per layout). */
export function createOrtProductBackend(options: OrtProductBackendOptions = {}): OrtProductBackend {
  return new OrtProductBackend(options);
}
