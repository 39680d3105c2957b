/** Shared builder of the elementwise unary ops: same dtype and shape as the input. */
import type { Value } from '../builder.js';
import { checkFloat } from './common.js';

export type UnaryOp = 'Neg' | 'Sqrt' | 'Exp' | 'Log' | 'Tanh' | 'Erf' | 'Sigmoid' | 'Not';

/** Builds `op(x)`; float ops check that x is float32/float64. */
export function unary(op: UnaryOp, name: string, x: Value, float = true): Value {
  if (float) checkFloat(name, 'x', x);
  return x.graph.node(op, [x], {}, [{ dtype: x.dtype, shape: x.shape }], name)[0];
}
