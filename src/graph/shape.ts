/**
 * Symbolic shapes. A dimension is a number or a symbol such as `'batch'` or `'seq'`; products of
 * symbols (what Reshape produces when it merges axes) are canonical strings like `'batch*seq'` or
 * `'12*batch'` (coefficient first, symbols sorted), so equal products compare equal as strings.
 *
 * Broadcasting (numpy rules, right-aligned): two dims broadcast when they are equal or one of them
 * is the literal 1. A symbol is never assumed to be 1, so `'batch'` against `5` or against `'seq'`
 * is a build-time error: this keeps every broadcast statically known, which the gradient rules
 * need to know which axes to sum over.
 */
import { check } from './errors.js';

export type Dim = number | string;
export type Shape = readonly Dim[];

/** A dimension as coefficient × product of symbols. */
export interface SymDim {
  readonly coef: number;
  readonly syms: readonly string[];
}

const SYMBOL = /^[A-Za-z_][A-Za-z0-9_.]*$/;

/** True if `name` is a valid symbol atom (letters, digits, `_`, `.`; not starting with a digit). */
export function isSymbol(name: string): boolean {
  return SYMBOL.test(name);
}

/** Parses a dimension into coefficient and symbols. */
export function parseDim(d: Dim): SymDim {
  if (typeof d === 'number') return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split('*')) {
    if (/^\d+$/.test(part)) coef *= Number(part);
    else {
      check(isSymbol(part), () => `shape: '${d}' is not a dimension (symbols are names like 'batch', products like 'batch*seq')`);
      syms.push(part);
    }
  }
  return { coef, syms: syms.sort() };
}

/** The canonical dimension of a coefficient and symbols: a number when there are no symbols. */
export function formatDim(s: SymDim): Dim {
  if (s.syms.length === 0) return s.coef;
  const syms = [...s.syms].sort().join('*');
  return s.coef === 1 ? syms : `${s.coef}*${syms}`;
}

/** Canonical form of a dimension (`'seq*batch'` → `'batch*seq'`, `'1*n'` → `'n'`). */
export function canonicalDim(d: Dim): Dim {
  return typeof d === 'number' ? d : formatDim(parseDim(d));
}

/** True if two dimensions are the same number or the same symbolic product. */
export function dimEquals(a: Dim, b: Dim): boolean {
  return canonicalDim(a) === canonicalDim(b);
}

/** True if two shapes have the same rank and equal dimensions. */
export function shapeEquals(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => dimEquals(d, b[i]));
}

/** Product of two dimensions. */
export function mulDims(a: Dim, b: Dim): Dim {
  const x = parseDim(a);
  const y = parseDim(b);
  return formatDim({ coef: x.coef * y.coef, syms: [...x.syms, ...y.syms] });
}

/** `a / b` when it is a whole dimension (symbols cancel, coefficients divide), else undefined. */
export function divDims(a: Dim, b: Dim): Dim | undefined {
  const x = parseDim(a);
  const y = parseDim(b);
  if (y.coef === 0 || x.coef % y.coef !== 0) return undefined;
  const rest = [...x.syms];
  for (const s of y.syms) {
    const at = rest.indexOf(s);
    if (at < 0) return undefined;
    rest.splice(at, 1);
  }
  return formatDim({ coef: x.coef / y.coef, syms: rest });
}

/** Number of elements of a shape, symbolic when the shape is. */
export function numel(shape: Shape): Dim {
  return shape.reduce<Dim>((acc, d) => mulDims(acc, d), 1);
}

/** True when every dimension is a number. */
export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

/** Formats a shape for messages: `[batch, seq, 768]`. */
export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** The broadcast of two dimensions, or undefined when they do not broadcast. */
export function broadcastDim(a: Dim, b: Dim): Dim | undefined {
  if (dimEquals(a, b)) return canonicalDim(a);
  if (a === 1) return canonicalDim(b);
  if (b === 1) return canonicalDim(a);
  return undefined;
}

/** Numpy broadcast of several shapes; the error names the op, the arguments and the axis. */
export function broadcastShapes(op: string, args: readonly { name: string; shape: Shape }[]): Shape {
  const rank = Math.max(...args.map((a) => a.shape.length));
  const out: Dim[] = [];
  for (let axis = 0; axis < rank; axis++) {
    let dim: Dim = 1;
    let from = '';
    for (const a of args) {
      const i = axis - (rank - a.shape.length);
      if (i < 0) continue;
      const next = broadcastDim(dim, a.shape[i]);
      check(next !== undefined, () => `${op}: ${a.name} ${formatShape(a.shape)} does not broadcast with ${from} on axis ${axis - rank} (${String(a.shape[i])} vs ${String(dim)})`);
      if (next !== dim) from = `${a.name} ${formatShape(a.shape)}`;
      dim = next;
    }
    out.push(dim);
  }
  return out;
}

/** Resolves a possibly negative axis against a rank; the error names the op and the argument. */
export function normalizeAxis(op: string, arg: string, axis: number, rank: number): number {
  check(Number.isInteger(axis) && axis >= -rank && axis < rank, () => `${op}: ${arg} ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** Resolves several axes, rejecting duplicates; returns them sorted. */
export function normalizeAxes(op: string, arg: string, axes: readonly number[], rank: number): number[] {
  const out = axes.map((a) => normalizeAxis(op, arg, a, rank)).sort((x, y) => x - y);
  check(new Set(out).size === out.length, () => `${op}: ${arg} [${axes.join(', ')}] repeats an axis`);
  return out;
}
