/** Cast between dtypes. */
import type { Value } from '../builder.js';
import { isFloat, type DType } from '../dtype.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { OnnxDataType } from '../onnx/model.js';

/** x converted to `dtype` (returns x itself when it already has it). */
export function cast(x: Value, dtype: DType): Value {
  if (x.dtype === dtype) return x;
  return x.graph.node('Cast', [x], { to: OnnxDataType[dtype] }, [{ dtype, shape: x.shape }], 'cast')[0];
}

/** d cast(x) = cast(dy) back to x's dtype, between float types; nothing flows into ints or bools. */
export const castGrad: GradRule = {
  op: 'Cast',
  grad: (ctx) => {
    const x = inputOf(ctx, 0);
    return [isFloat(x.dtype) ? cast(dyOf(ctx), x.dtype) : undefined];
  },
};
