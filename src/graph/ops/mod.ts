/** Mod: integer remainder (sign of the divisor, like Python). Not differentiable. */
import type { Value } from '../builder.js';
import { binary } from './binary.js';
import type { Operand } from './common.js';

/** `a mod b` for integer dtypes, the result taking the divisor's sign. */
export function mod(a: Operand, b: Operand): Value {
  return binary('Mod', 'mod', a, b);
}
