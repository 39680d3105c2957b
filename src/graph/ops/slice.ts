/** Slice along one axis. */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import type { GradRule } from '../gradRule.js';
import { dyOf, inputOf } from '../gradRule.js';
import { canonicalDim, normalizeAxis, type Dim } from '../shape.js';
import { constantInts, int64s } from './common.js';

const INT64_MAX = 9223372036854775807n;

/** Output length of slicing a numeric dim, with ONNX's clamping of negative and large bounds. */
function sliceLength(dim: number, start: number, end: number, step: number): number {
  const clamp = (i: number): number => Math.min(Math.max(i < 0 ? i + dim : i, 0), dim);
  return Math.max(0, Math.ceil((clamp(end) - clamp(start)) / step));
}

/**
 * `x[start:end:step]` along `axis` (step ≥ 1). `end` may be a symbol, read at run time (slicing a
 * `[maxSeq, d]` table to `[seq, d]`); omitted, it runs to the end of the axis. On a symbolic axis,
 * `start` must be 0 or the end numeric (the axis is then assumed at least `end` long).
 */
export function slice(x: Value, axis: number, start: number, end?: Dim, step = 1): Value {
  const ax = normalizeAxis('slice', 'axis', axis, x.rank);
  check(Number.isInteger(step) && step >= 1, () => `slice: step ${step} must be a positive integer`);
  check(Number.isInteger(start), () => `slice: start ${start} must be an integer`);
  const dim = x.shape[ax];
  let len: Dim;
  if (typeof dim === 'number' && typeof end !== 'string') {
    len = sliceLength(dim, start, end ?? dim, step);
  } else {
    check(start >= 0 && step === 1, () => `slice: axis ${ax} of x ${x.toString()} is symbolic; start must be ≥ 0 and step 1`);
    if (end === undefined) {
      check(start === 0, () => `slice: cannot slice symbolic axis ${ax} of x ${x.toString()} from ${start} to its end`);
      len = dim;
    } else if (typeof end === 'string') {
      check(start === 0, () => `slice: a symbolic end '${end}' needs start 0`);
      len = canonicalDim(end);
    } else {
      check(end >= start, () => `slice: end ${end} is before start ${start}`);
      len = end - start;
    }
  }
  const g = x.graph;
  const ends = typeof end === 'string' ? g.dimsTensor([end], x) : end === undefined ? g.constant(BigInt64Array.of(INT64_MAX), [1], 'ends') : int64s(g, [end]);
  const shape = x.shape.map((d, i) => (i === ax ? len : d));
  const inputs = [x, int64s(g, [start]), ends, int64s(g, [ax])];
  if (step !== 1) inputs.push(int64s(g, [step]));
  return g.node('Slice', inputs, {}, [{ dtype: x.dtype, shape }], 'slice')[0];
}

/** d slice(x) = dy zero-padded back into x's shape; needs a numeric sliced axis and step 1. */
export const sliceGrad: GradRule = {
  op: 'Slice',
  grad: (ctx) => {
    const x = inputOf(ctx, 0);
    const y = ctx.outputs[0];
    const starts = constantInts(ctx.inputs[1]);
    const axes = constantInts(ctx.inputs[3]);
    const steps = ctx.inputs[4] === undefined ? [1] : constantInts(ctx.inputs[4]);
    check(starts?.length === 1 && axes?.length === 1 && steps?.length === 1, () => `slice: ${y.name} was not built by slice(), its gradient is unknown`);
    const info = { axis: axes[0] < 0 ? axes[0] + x.rank : axes[0], start: starts[0], step: steps[0] };
    const dim = x.shape[info.axis];
    const len = y.shape[info.axis];
    check(typeof dim === 'number' && typeof len === 'number' && info.step === 1, () => `slice: the gradient needs a numeric axis and step 1 (axis ${info.axis} of ${x.toString()}, step ${info.step})`);
    const begin = info.start < 0 ? Math.max(info.start + dim, 0) : Math.min(info.start, dim);
    const pads = new Array<number>(2 * x.rank).fill(0);
    pads[info.axis] = begin;
    pads[x.rank + info.axis] = dim - begin - len;
    const g = x.graph;
    return [g.node('Pad', [dyOf(ctx), int64s(g, pads)], { mode: 'constant' }, [{ dtype: x.dtype, shape: x.shape }], 'pad')[0]];
  },
};
