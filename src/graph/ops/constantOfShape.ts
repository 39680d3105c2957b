/** ConstantOfShape: tensors filled with one value, shaped at run time. */
import type { Value } from '../builder.js';
import { rawBytes, scalarData, type DType } from '../dtype.js';
import type { Shape } from '../shape.js';

/** A tensor of `shape` (an int64 1-D value) filled with `value` in `dtype`; `outShape` is its static shape. */
export function constantOfShape(shape: Value, value: number, dtype: DType, outShape: Shape): Value {
  const tensor = { name: '', elemType: dtype, dims: [1], raw: rawBytes(scalarData(value, dtype)) };
  return shape.graph.node('ConstantOfShape', [shape], { value: tensor }, [{ dtype, shape: outShape }], 'fill')[0];
}

/** Zeros with x's run-time shape and dtype. */
export function zerosLike(x: Value): Value {
  return constantOfShape(x.graph.shapeOf(x), 0, x.dtype, x.shape);
}

/** A tensor of `shape` (numbers and symbols) filled with `value`. */
export function fill(like: Value, shape: Shape, value: number, dtype: DType = like.dtype): Value {
  return constantOfShape(like.graph.dimsTensor(shape, like), value, dtype, shape);
}
