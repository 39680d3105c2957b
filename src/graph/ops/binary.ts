/** Shared builder of the broadcasting binary ops (Add, Sub, Mul, Div, Pow, Mod, Min, Max, comparisons). */
import type { Value } from '../builder.js';
import type { DType } from '../dtype.js';
import { broadcastShapes } from '../shape.js';
import { asValue, checkSameDType, dtypeOfOperands, graphOf, type Operand } from './common.js';

export type BinaryOp = 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow' | 'Mod' | 'Min' | 'Max' | 'Equal' | 'Less' | 'GreaterOrEqual' | 'And';

/**
 * Builds `op(a, b)` with numpy broadcasting. Numbers become scalar constants of the other
 * operand's dtype. `outDType` overrides the output dtype (bool for comparisons).
 */
export function binary(op: BinaryOp, name: string, a: Operand, b: Operand, outDType?: DType): Value {
  const g = graphOf(name, a, b);
  const dtype = dtypeOfOperands(a, b);
  const va = asValue(g, a, dtype);
  const vb = asValue(g, b, dtype);
  checkSameDType(name, va, 'a', vb, 'b');
  const shape = broadcastShapes(name, [{ name: 'a', shape: va.shape }, { name: 'b', shape: vb.shape }]);
  return g.node(op, [va, vb], {}, [{ dtype: outDType ?? dtype, shape }], name)[0];
}
