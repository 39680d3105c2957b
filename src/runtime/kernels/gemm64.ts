/**
 * The onnxruntime `GemmBackend` of core/lowRank.ts: out = op(A)·op(B) in float64 as one ONNX Gemm
 * (transA/transB attributes, symbolic dims; one cached session per transposition pair), written into
 * the caller's buffer (a preallocated output). onnxruntime's CPU Gemm runs MLAS's multi-threaded
 * DGEMM: about 20 GFLOP/s on the 2-core development machine against about 1 for the TypeScript
 * loops, which is what makes `fedex export` of 7B-sized modules take seconds (docs/benchmarks.md).
 */
import type { GemmBackend, GemmRequest } from '../../core/lowRank.js';
import { encodeModel, type OnnxModel } from '../../graph/onnx/model.js';
import { createSession, type Device, type OrtSession, ortTensor, runSession, SessionCache } from '../session.js';

export interface OrtGemmBackendOptions {
  readonly device?: Device;
  readonly intraOpThreads?: number;
}

/** Y = op(A)·op(B), or with `subtract` Y = C − op(A)·op(B) (float64, symbolic dims). */
export function gemm64Model(transA: boolean, transB: boolean, subtract = false): OnnxModel {
  return {
    opset: 18,
    producerName: 'fedex-gemm64',
    graph: {
      name: `gemm64_${transA ? 't' : 'n'}${transB ? 't' : 'n'}${subtract ? '_sub' : ''}`,
      nodes: [{
        opType: 'Gemm',
        name: 'gemm',
        inputs: subtract ? ['A', 'B', 'C'] : ['A', 'B'],
        outputs: ['Y'],
        attributes: {
          transA: { kind: 'int', value: transA ? 1 : 0 },
          transB: { kind: 'int', value: transB ? 1 : 0 },
          ...(subtract ? { alpha: { kind: 'float', value: -1 }, beta: { kind: 'float', value: 1 } } : {}),
        },
      }],
      inputs: [
        { name: 'A', elemType: 'float64', shape: transA ? ['k', 'm'] : ['m', 'k'] },
        { name: 'B', elemType: 'float64', shape: transB ? ['n', 'k'] : ['k', 'n'] },
        ...(subtract ? [{ name: 'C', elemType: 'float64' as const, shape: ['m', 'n'] }] : []),
      ],
      outputs: [{ name: 'Y', elemType: 'float64', shape: ['m', 'n'] }],
    },
  };
}

class OrtGemmBackend implements GemmBackend {
  readonly name = 'onnxruntime';
  private readonly sessions = new SessionCache();

  constructor(private readonly options: OrtGemmBackendOptions) {}

  private session(transA: boolean, transB: boolean, subtract: boolean): Promise<OrtSession> {
    return this.sessions.get(`${transA}${transB}${subtract}`, () => createSession(encodeModel(gemm64Model(transA, transB, subtract)), { device: this.options.device ?? 'cpu', intraOpThreads: this.options.intraOpThreads }));
  }

  async gemm(r: GemmRequest): Promise<void> {
    const { m, n, k } = r;
    if (r.a.length !== m * k || r.b.length !== k * n || r.out.length !== m * n) {
      throw new RangeError(`gemm64: A has ${r.a.length} values, B ${r.b.length}, out ${r.out.length}; m = ${m}, n = ${n}, k = ${k}`);
    }
    if (m === 0 || n === 0) return;
    const subtract = r.subtract === true;
    if (k === 0) {
      if (!subtract) r.out.fill(0);
      return;
    }
    const session = await this.session(r.transA, r.transB, subtract);
    // With `subtract`, C and Y are the same buffer: onnxruntime's CPU Gemm copies C into Y (here a
    // no-op) and then accumulates into Y, as the float32 fused update relies on (factoredUpdate.ts).
    await runSession(session, { A: ortTensor('float64', r.a, r.transA ? [k, m] : [m, k]), B: ortTensor('float64', r.b, r.transB ? [n, k] : [k, n]), ...(subtract ? { C: ortTensor('float64', r.out, [m, n]) } : {}) }, {
      Y: ortTensor('float64', r.out, [m, n]),
    });
  }

  async dispose(): Promise<void> {
    await this.sessions.dispose();
  }
}

/** Creates the onnxruntime float64 Gemm backend (CPU by default; sessions built on first use). */
export function createOrtGemmBackend(options: OrtGemmBackendOptions = {}): GemmBackend {
  return new OrtGemmBackend(options);
}
