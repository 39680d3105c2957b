/**
 * The fused low-rank update target += scale·P·Q (`linear`) or target += scale·(P·Q)ᵀ (`conv1d`,
 * target stored in × out), in one pass over the target and without forming P·Q. `ProductBackend`
 * is the seam: src/runtime/kernels/factoredUpdate.ts implements it with onnxruntime (Gemm) for real
 * sizes; the TypeScript backend here is for small shapes and tests.
 */
import { shapeString } from './tensor.js';
import type { Matrix } from './tensor.js';
import { baseWeightShape, type Layout } from './lora.js';
import type { FactoredUpdate } from './residual.js';

/** Applies scale·P·Q to a float32 target in place, honouring the weight layout. */
export interface ProductBackend {
  readonly name: string;
  /**
   * target += scale·P·Q (`linear`, target out × in) or target += scale·(P·Q)ᵀ (`conv1d`, target
   * in × out), with P out × inner and Q inner × in. Writes into `target.data`.
   */
  addScaledProduct(target: Matrix<Float32Array>, layout: Layout, p: Matrix<Float32Array>, q: Matrix<Float32Array>, scale: number): Promise<void>;
  /** Releases native resources, if any. */
  dispose?(): Promise<void>;
}

/** Checks the shapes of a fused update; errors name the operands and their shapes. */
export function checkProductShapes(target: Matrix, layout: Layout, p: Matrix, q: Matrix, scale: number, op = 'addScaledProduct'): void {
  const [out, innerP] = p.shape;
  const [innerQ, inF] = q.shape;
  if (innerP !== innerQ) throw new RangeError(`${op}: P is ${shapeString(p.shape)} and Q is ${shapeString(q.shape)}: inner sizes differ`);
  const expected = baseWeightShape(layout, inF, out);
  if (target.shape[0] !== expected[0] || target.shape[1] !== expected[1]) {
    throw new RangeError(`${op}: target is ${shapeString(target.shape)} but ${layout} layout with P ${shapeString(p.shape)}, Q ${shapeString(q.shape)} needs ${shapeString(expected)}`);
  }
  if (layout !== 'linear' && layout !== 'conv1d') throw new RangeError(`${op}: unknown layout '${String(layout)}'`);
  if (!Number.isFinite(scale)) throw new RangeError(`${op}: scale must be finite, got ${scale}`);
}

/**
 * `scale·P` for a fused backend that cannot take the scale as an attribute of a cached graph: P
 * (out × inner, the small factor) is pre-scaled in float32, out·inner multiplications against
 * out·inner·in for the product; the extra rounding is float32 round-off of the update. Returns P itself for scale 1.
 */
export function prescaled(p: Float32Array, scale: number): Float32Array {
  if (scale === 1) return p;
  const out = new Float32Array(p.length);
  for (let i = 0; i < p.length; i++) out[i] = scale * p[i];
  return out;
}

/** Columns of the target updated together: the float64 accumulator of one block stays in L1. */
const COL_BLOCK = 1024;

/**
 * Adds rows [row0, row1) of scale·a·b into target rows (row-major a: rows × inner, b: inner × cols),
 * each block accumulated in float64 (scale included) and rounded once when added to the float32
 * target.
 */
function addProductRows(target: Float32Array, scale: number, a: Float32Array, b: Float32Array, inner: number, cols: number, row0: number, row1: number): void {
  const acc = new Float64Array(Math.min(COL_BLOCK, cols));
  for (let c0 = 0; c0 < cols; c0 += COL_BLOCK) {
    const c1 = Math.min(cols, c0 + COL_BLOCK);
    const width = c1 - c0;
    for (let i = row0; i < row1; i++) {
      acc.fill(0, 0, width);
      for (let t = 0; t < inner; t++) {
        const coef = scale * a[i * inner + t];
        if (coef === 0) continue;
        const bRow = t * cols + c0;
        for (let j = 0; j < width; j++) acc[j] += coef * b[bRow + j];
      }
      const tRow = i * cols + c0;
      for (let j = 0; j < width; j++) target[tRow + j] += acc[j];
    }
  }
}

/**
 * The fused update in plain TypeScript (blocked loops, float64 accumulation per target block, one
 * rounding into the float32 target). `linear`: rows of the target are rows of P. `conv1d`: rows of
 * the target are columns of Q, so Qᵀ (in × inner) and Pᵀ (inner × out) — both small — are formed
 * first, which keeps every inner loop contiguous.
 */
export function addScaledProductSync(target: Matrix<Float32Array>, layout: Layout, p: Matrix<Float32Array>, q: Matrix<Float32Array>, scale: number): void {
  checkProductShapes(target, layout, p, q, scale);
  const [out, inner] = p.shape;
  const inF = q.shape[1];
  if (inner === 0 || scale === 0) return;
  if (layout === 'linear') {
    addProductRows(target.data, scale, p.data, q.data, inner, inF, 0, out);
    return;
  }
  const qt = new Float32Array(inF * inner);
  for (let t = 0; t < inner; t++) for (let x = 0; x < inF; x++) qt[x * inner + t] = q.data[t * inF + x];
  const pt = new Float32Array(inner * out);
  for (let o = 0; o < out; o++) for (let t = 0; t < inner; t++) pt[t * out + o] = p.data[o * inner + t];
  addProductRows(target.data, scale, qt, pt, inner, out, 0, inF);
}

/** `addScaledProductSync` behind the `ProductBackend` interface. */
export function createTypeScriptBackend(): ProductBackend {
  return {
    name: 'typescript',
    async addScaledProduct(target, layout, p, q, scale): Promise<void> {
      addScaledProductSync(target, layout, p, q, scale);
    },
  };
}

/**
 * The dense float32 update scale·P·Q in the stored layout of W0 (out × in for `linear`, in × out for
 * `conv1d`): one fused product into zeros, for when the dense form is the smaller (`preferFactored`).
 */
export async function materializeUpdate(backend: ProductBackend, update: FactoredUpdate): Promise<Matrix<Float32Array>> {
  const out = update.p.shape[0];
  const inF = update.q.shape[1];
  const target = { shape: baseWeightShape(update.layout, inF, out), data: new Float32Array(out * inF) };
  await backend.addScaledProduct(target, update.layout, update.p, update.q, update.scale);
  return target;
}
