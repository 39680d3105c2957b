/** Where: elementwise select with broadcasting. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { broadcastShapes } from '../shape.js';
import { asValue, checkSameDType, dtypeOfOperands, graphOf, type Operand } from './common.js';

/** `condition ? a : b` elementwise; numbers become scalars of the other operand's dtype. */
export function where(condition: Value, a: Operand, b: Operand): Value {
  const g = graphOf('where', condition, a, b);
  check(condition.dtype === 'bool', () => `where: condition must be bool, got ${condition.dtype}`);
  const dtype = dtypeOfOperands(a, b);
  const va = asValue(g, a, dtype);
  const vb = asValue(g, b, dtype);
  checkSameDType('where', va, 'a', vb, 'b');
  const shape = broadcastShapes('where', [{ name: 'condition', shape: condition.shape }, { name: 'a', shape: va.shape }, { name: 'b', shape: vb.shape }]);
  return g.node('Where', [condition, va, vb], {}, [{ dtype, shape }], 'where')[0];
}

/** d a = where(c, dy, 0), d b = where(c, 0, dy), each summed over its broadcast axes. */
export const whereGrad: GradRule = {
  op: 'Where',
  grad: (ctx) => {
    const c = inputOf(ctx, 0);
    const dy = dyOf(ctx);
    return [
      undefined,
      ctx.needs[1] ? where(c, dy, 0) : undefined,
      ctx.needs[2] ? where(c, 0, dy) : undefined,
    ];
  },
};
