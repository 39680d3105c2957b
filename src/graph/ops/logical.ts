/**
 * Comparisons and boolean logic. They produce bool values, so they are never on a gradient path
 * and have no gradient rules; they are grouped in one file for that reason.
 */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { binary } from './binary.js';
import type { Operand } from './common.js';
import { unary } from './unary.js';

/** `a == b` elementwise (bool). */
export function equal(a: Operand, b: Operand): Value {
  return binary('Equal', 'equal', a, b, 'bool');
}

/** `a < b` elementwise (bool). */
export function less(a: Operand, b: Operand): Value {
  return binary('Less', 'less', a, b, 'bool');
}

/** `a >= b` elementwise (bool). */
export function greaterOrEqual(a: Operand, b: Operand): Value {
  return binary('GreaterOrEqual', 'greaterOrEqual', a, b, 'bool');
}

/** `!x` elementwise. */
export function logicalNot(x: Value): Value {
  check(x.dtype === 'bool', () => `logicalNot: x must be bool, got ${x.dtype}`);
  return unary('Not', 'logicalNot', x, false);
}

/** `a && b` elementwise. */
export function logicalAnd(a: Value, b: Value): Value {
  check(a.dtype === 'bool' && b.dtype === 'bool', () => `logicalAnd: a and b must be bool, got ${a.dtype} and ${b.dtype}`);
  return binary('And', 'logicalAnd', a, b);
}
