/**
 * Frozen weights held below float32 and widened where they are used. A float32 weight `[...shape]`
 * is stored in one of three forms, each a graph input of the weight's name:
 *
 * | form | input | widened by |
 * |---|---|---|
 * | float16 | float16 `[...shape]` | Cast |
 * | bfloat16 | uint16 `[...shape]`, the bits (onnxruntime-node has no bfloat16 tensors in JavaScript) | BitCast (opset 26), Cast |
 * | int4 | uint8 `[rows, cols/2]` (two 4-bit codes a byte) and float32 `<name>.scales` `[rows, cols/blockSize]` | GatherBlockQuantized of every row |
 *
 * Widening is exact: every stored value is a float32 value. The widening nodes are `recompute`
 * nodes (builder.ts): each use gets its own copy, freed after it, and autodiff makes another where
 * the backward pass needs the weight (dX = dY·W), so no float32 copy lives from forward to backward.
 * A row lookup (an embedding) gathers the stored rows and widens only those ({@link gatherRows}).
 */
import type { GraphBuilder, Value } from '../builder.js';
import { check } from '../errors.js';
import { bitCast } from '../ops/bitCast.js';
import { gather } from '../ops/gather.js';
import { gatherBlockQuantized, isQuantBlockSize, MIN_QUANT_BLOCK } from '../ops/gatherBlockQuantized.js';
import { OnnxDataType } from '../onnx/model.js';
import { formatShape } from '../shape.js';

/** How a frozen float32 weight is stored (see the module comment). */
export type StoredForm =
  | { readonly kind: 'float16' }
  | { readonly kind: 'bfloat16' }
  | { readonly kind: 'int4'; readonly blockSize: number };

/** The graph inputs of one stored weight. */
export interface StoredWeight {
  readonly name: string;
  readonly form: StoredForm;
  /** float16 `[...shape]`, uint16 bits `[...shape]` (bfloat16), or uint8 codes `[rows, cols/2]` (int4). */
  readonly data: Value;
  /** int4: float32 `[rows, cols / blockSize]`, one scale per block of a row. */
  readonly scales?: Value;
  /** The shape of the float32 weight it stands for. */
  readonly shape: readonly number[];
}

/** Graph input name of an int4 weight's block scales. */
export function scalesInputName(name: string): string {
  return `${name}.scales`;
}

/** Why a weight of this shape cannot take `form`, or undefined when it can (int4 needs 2-D, whole blocks of columns). */
export function unstorableReason(shape: readonly number[], form: StoredForm): string | undefined {
  if (form.kind !== 'int4') return undefined;
  if (!isQuantBlockSize(form.blockSize)) return `block size ${form.blockSize} is not a power of two ≥ ${MIN_QUANT_BLOCK}`;
  if (shape.length !== 2) return `int4 blocks quantise matrices, this tensor has ${shape.length} dims ${formatShape(shape)}`;
  if (shape[1] % form.blockSize !== 0) return `its ${shape[1]} columns are not a multiple of the block size ${form.blockSize}`;
  return undefined;
}

/** Declares the inputs of a weight `name` of `shape` stored in `form`. */
export function declareStored(g: GraphBuilder, name: string, shape: readonly number[], form: StoredForm): StoredWeight {
  const why = unstorableReason(shape, form);
  check(why === undefined, () => `declareStored: ${name} ${formatShape(shape)} cannot be stored as ${form.kind}: ${why ?? ''}`);
  switch (form.kind) {
    case 'float16':
      return { name, form, data: g.input(name, 'float16', shape), shape };
    case 'bfloat16':
      return { name, form, data: g.input(name, 'uint16', shape), shape };
    case 'int4': {
      const [rows, cols] = shape;
      const data = g.input(name, 'uint8', [rows, cols / 2]);
      const scales = g.input(scalesInputName(name), 'float32', [rows, cols / form.blockSize]);
      return { name, form, data, scales, shape };
    }
  }
}

/** float32 from a float16 or bfloat16 value (bfloat16 as uint16 bits), each node a recompute node when asked. */
function widenHalf(w: StoredWeight, x: Value, recompute: boolean): Value {
  const options = { recompute };
  if (w.form.kind === 'float16') return x.graph.node('Cast', [x], { to: OnnxDataType.float32 }, [{ dtype: 'float32', shape: x.shape }], 'widen', options)[0];
  const bits = bitCast(x, 'bfloat16', options);
  return x.graph.node('Cast', [bits], { to: OnnxDataType.float32 }, [{ dtype: 'float32', shape: x.shape }], 'widen', options)[0];
}

/** The whole weight as float32, computed where it is used (recompute nodes: see the module comment). */
export function widen(w: StoredWeight): Value {
  if (w.form.kind !== 'int4') return widenHalf(w, w.data, true);
  const g = w.data.graph;
  const rows = g.constant(Int32Array.from({ length: w.shape[0] }, (_, i) => i), [w.shape[0]], 'rows');
  return gatherBlockQuantized(w.data, rows, w.scales!, w.form.blockSize, { recompute: true });
}

/** Rows `indices` of the weight as float32 (`gather(widen(w), indices)` without widening the other rows). */
export function gatherRows(w: StoredWeight, indices: Value): Value {
  if (w.form.kind === 'int4') return gatherBlockQuantized(w.data, indices, w.scales!, w.form.blockSize);
  return widenHalf(w, gather(w.data, indices), false);
}
