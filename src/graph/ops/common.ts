/** Small helpers shared by the op builders: operand conversion and input checks. */
import type { GraphBuilder, Value } from '../builder.js';
import { check } from '../errors.js';
import { isFloat, type DType } from '../dtype.js';
import { formatShape } from '../shape.js';

/** A value, or a plain number that becomes a scalar constant of the other operand's dtype. */
export type Operand = Value | number;

/** The graph shared by the value operands; the error names the op when there is none or several. */
export function graphOf(op: string, ...xs: readonly (Operand | undefined)[]): GraphBuilder {
  let g: GraphBuilder | undefined;
  for (const x of xs) {
    if (x === undefined || typeof x === 'number') continue;
    check(g === undefined || x.graph === g, () => `${op}: ${x.name} belongs to another graph`);
    g = x.graph;
  }
  check(g !== undefined, () => `${op}: needs at least one graph value, got only numbers`);
  return g;
}

/** Converts a number to a scalar constant of `dtype`; values pass through. */
export function asValue(g: GraphBuilder, x: Operand, dtype: DType): Value {
  return typeof x === 'number' ? g.scalar(x, dtype) : x;
}

/** The dtype of the first value operand. */
export function dtypeOfOperands(...xs: readonly Operand[]): DType {
  for (const x of xs) if (typeof x !== 'number') return x.dtype;
  return 'float32';
}

/** Requires a float32/float64 value. */
export function checkFloat(op: string, arg: string, v: Value): void {
  check(isFloat(v.dtype), () => `${op}: ${arg} must be float32 or float64, got ${v.dtype}`);
}

/** Requires an int64 or int32 value. */
export function checkIndex(op: string, arg: string, v: Value): void {
  check(v.dtype === 'int64' || v.dtype === 'int32', () => `${op}: ${arg} must be int64 or int32, got ${v.dtype}`);
}

/** Requires two values of the same dtype. */
export function checkSameDType(op: string, a: Value, aName: string, b: Value, bName: string): void {
  check(a.dtype === b.dtype, () => `${op}: ${aName} is ${a.dtype}, ${bName} is ${b.dtype}`);
}

/**
 * Requires float operands of one dtype: the first float32 or float64, each other of its dtype. The
 * keys name the arguments in errors; undefined ones (optional inputs not given) are skipped.
 */
export function checkFloatOperands(op: string, operands: Readonly<Record<string, Value | undefined>>): void {
  const [[name, first], ...others] = Object.entries(operands).filter((e): e is [string, Value] => e[1] !== undefined);
  checkFloat(op, name, first);
  for (const [otherName, other] of others) checkSameDType(op, first, name, other, otherName);
}

/** Requires a given rank, or a minimum rank. */
export function checkRank(op: string, arg: string, v: Value, rank: number, atLeast = false): void {
  check(atLeast ? v.rank >= rank : v.rank === rank, () => `${op}: ${arg} has ${v.rank} dims ${formatShape(v.shape)}, expected ${atLeast ? 'at least ' : ''}${rank}`);
}

/** An int64 1-D constant, e.g. the axes input of a reduction. */
export function int64s(g: GraphBuilder, values: readonly number[]): Value {
  return g.constant(BigInt64Array.from(values, BigInt), [values.length], 'ints');
}

/** `[0, 1, …, n-1]`. */
export function iota(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** The values of an int64 Constant node's output, or undefined when `v` is not one. */
export function constantInts(v: Value | undefined): number[] | undefined {
  const node = v?.producer;
  if (node?.op !== 'Constant') return undefined;
  const t = node.attrs.value;
  if (typeof t !== 'object' || !('raw' in t) || t.raw === undefined || t.elemType !== 'int64') return undefined;
  return Array.from(new BigInt64Array(t.raw.slice().buffer), Number);
}
