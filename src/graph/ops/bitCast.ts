/** BitCast (opset 26): the same bits read as another dtype of the same width. */
import type { Value } from '../builder.js';
import type { DType } from '../dtype.js';
import { check } from '../errors.js';
import { dtypeBytes } from '../memory.js';
import { OnnxDataType } from '../onnx/model.js';

/** `x`'s bits as `dtype` (bfloat16 weights travel as uint16); not differentiable. */
export function bitCast(x: Value, dtype: DType, options: { recompute?: boolean } = {}): Value {
  check(dtypeBytes(x.dtype) === dtypeBytes(dtype) && x.dtype !== 'bool' && dtype !== 'bool',
    () => `bitCast: ${x.toString()} cannot be read as ${dtype} (BitCast keeps the element width: ${dtypeBytes(x.dtype)} vs ${dtypeBytes(dtype)} bytes)`);
  return x.graph.node('BitCast', [x], { to: OnnxDataType[dtype] }, [{ dtype, shape: x.shape }], 'bitCast', options)[0];
}
