/**
 * Lowering: a built graph rewritten, node by node, into a new graph that computes the same outputs
 * with the kernels an execution provider has. It runs after autodiff (the gradient rules see the
 * original ops) and before emission; the CPU needs none of it.
 *
 * onnxruntime's WebGPU provider (see docs/devices.md) has no LogSoftmax kernel, and its integer
 * kernels take int32 only (no int64 arithmetic, comparison, Where, Cast from int64 or Gather of
 * int64 data). So a lowered graph can:
 *
 * - `decomposeLogSoftmax`: compute LogSoftmax as `d − log Σ exp(d)` with `d = x − max(x)`, the same
 *   stable formula from primitives every provider has;
 * - `int32Inputs`: declare the named int64 inputs (token ids, masks, labels: values far below 2³¹)
 *   as int32. What is computed from them follows: an op whose operands of one type (`T`) include
 *   such a value computes in int32, and its other int64 operands are cast to int32 (constants, which
 *   onnxruntime folds when the graph loads); every `Cast(to int64)` of a non-int64 value casts to
 *   int32 instead. Inputs that ONNX requires in int64 (shapes, axes, pads) get a cast back. Gather's
 *   indices take either type and pass unchanged. Other int64 inputs (the dropout seed, whose hash
 *   needs 62-bit products) stay int64, unless
 * - `uint32Seeds`: the named int64 dropout seeds (below 2³², as the trainer derives them) become
 *   uint32, and every dropout mask built from one is built again by `dropoutMaskUint32`: the same
 *   hash in uint32 arithmetic modulo 2³¹ − 1, so the same mask, without int64 `Mod`;
 * - `dropoutSizes`: those masks number x's rows from run-time sizes of the batch dims, a new uint32
 *   input (the batch before padding to a fixed shape: it then gets the unpadded batch's masks).
 *
 * The lowered graph's outputs may narrow too (an int64 output computed from the int32 inputs
 * becomes int32): callers read the dtypes of {@link Lowered.outputs}.
 */
import { GraphBuilder, type Node, type Value } from './builder.js';
import { check } from './errors.js';
import { OnnxDataType } from './onnx/model.js';
import type { AttrsOf, OpName } from './opTable.js';
import { exp } from './ops/exp.js';
import { log } from './ops/log.js';
import { reduceMax } from './ops/reduceMax.js';
import { reduceSum } from './ops/reduceSum.js';
import { sub } from './ops/sub.js';
import { liveNodes } from './prune.js';
import { dropoutMaskOf, dropoutMaskUint32, type DropoutMaskSpec, type SymbolValues } from './nn/dropout.js';

export interface LowerOptions {
  /** Replace LogSoftmax by `d − log Σ exp(d)`, `d = x − max(x)` along its axis. */
  readonly decomposeLogSoftmax?: boolean;
  /** int64 graph inputs to declare int32 (see the module comment); each must exist and be int64. */
  readonly int32Inputs?: readonly string[];
  /** int64 dropout seed inputs to declare uint32, their masks rebuilt in uint32 (see the module comment). */
  readonly uint32Seeds?: readonly string[];
  /**
   * With uint32Seeds: a new uint32 input `[symbols.length]` named `input`, holding at run time the
   * sizes of `symbols` the rebuilt masks are computed for (see dropoutMaskUint32).
   */
  readonly dropoutSizes?: { readonly input: string; readonly symbols: readonly string[] };
}

/** A lowered graph and its outputs (same names as given). */
export interface Lowered {
  readonly graph: GraphBuilder;
  readonly outputs: Readonly<Record<string, Value>>;
}

/**
 * The role of each input of an op in the int32 narrowing: `T` inputs share one type with the
 * outputs, `shape` inputs must be int64 in ONNX, `free` inputs keep whatever type they have
 * (indices, conditions, the input of Shape and Cast). Ops not listed: every input is `T`.
 */
type Slot = 'T' | 'shape' | 'free';
const SLOTS: Partial<Record<OpName, readonly Slot[]>> = {
  Where: ['free', 'T', 'T'],
  Reshape: ['T', 'shape'],
  Slice: ['T', 'shape', 'shape', 'shape', 'shape'],
  Split: ['T', 'shape'],
  Unsqueeze: ['T', 'shape'],
  Squeeze: ['T', 'shape'],
  Expand: ['T', 'shape'],
  Pad: ['T', 'shape', 'T', 'shape'],
  Shape: ['free'],
  Size: ['free'],
  ConstantOfShape: ['shape'],
  Cast: ['free'],
  BitCast: ['free'],
  GatherBlockQuantized: ['free', 'free', 'free', 'free'],
  Not: ['free'],
  And: ['free', 'free'],
  Gather: ['T', 'free'],
  GatherElements: ['T', 'free'],
  ScatterND: ['T', 'free', 'T'],
  ScatterElements: ['T', 'free', 'T'],
  ReduceSum: ['T', 'shape'],
  ReduceMean: ['T', 'shape'],
  ReduceMax: ['T', 'shape'],
};

function slotOf(op: OpName, i: number): Slot {
  return SLOTS[op]?.[i] ?? 'T';
}

/** `logSoftmax_12` → `logSoftmax`: the op's naming hint, for readable lowered names. */
function hintOf(v: Value): string {
  return v.name.replace(/(_\d+)+$/, '');
}

/** Rewrites the part of `g` that `outputs` need into a new graph (see the module comment). */
export function lowerGraph(g: GraphBuilder, outputs: Readonly<Record<string, Value>>, options: LowerOptions): Lowered {
  const narrow = inputsNamed(g, options.int32Inputs ?? [], 'int32Inputs');
  const seeds = inputsNamed(g, options.uint32Seeds ?? [], 'uint32Seeds');
  const out = new GraphBuilder(g.name);
  const map = new Map<Value, Value>();
  for (const v of g.inputs) map.set(v, out.input(v.name, narrow.has(v) ? 'int32' : seeds.has(v) ? 'uint32' : v.dtype, v.shape));
  const { dropoutSizes } = options;
  check(dropoutSizes === undefined || !g.inputs.some((v) => v.name === dropoutSizes.input), () => `lowerGraph: dropoutSizes input '${dropoutSizes?.input ?? ''}' is already an input of ${g.name}`);
  let sizes: SymbolValues | undefined;
  const sizesInput = (): SymbolValues => (sizes ??= { values: out.input(dropoutSizes!.input, 'uint32', [dropoutSizes!.symbols.length]), symbols: dropoutSizes!.symbols });

  const casts = new Map<string, Value>();
  /** `v` (a lowered value) as `dtype`, one Cast per value and dtype. */
  const castTo = (v: Value, dtype: 'int32' | 'int64'): Value => {
    if (v.dtype === dtype) return v;
    const key = `${v.id}:${dtype}`;
    let c = casts.get(key);
    if (c === undefined) {
      c = out.node('Cast', [v], { to: OnnxDataType[dtype] }, [{ dtype, shape: v.shape }], `${hintOf(v)}_${dtype}`)[0];
      casts.set(key, c);
    }
    return c;
  };
  const lowered = (v: Value): Value => {
    let w = map.get(v);
    if (w === undefined) {
      check(v.source === 'initializer', () => `lowerGraph: ${v.toString()} is used before it is computed`);
      w = out.initializer(v.name, g.initializerData(v), v.shape as number[]);
      map.set(v, w);
    }
    return w;
  };
  /** The dropout mask a value is, when its seed becomes uint32 (it is then built again, not replayed). */
  const rebuilt = (v: Value): DropoutMaskSpec | undefined => {
    const spec = dropoutMaskOf(v);
    return spec !== undefined && seeds.has(spec.seed) ? spec : undefined;
  };

  // A value that is `rebuilt` needs its spec's x and seed instead of what computed it (the int64 hash is left out).
  const needs = (n: Node): readonly (Value | undefined)[] => {
    const spec = rebuilt(n.outputs[0]);
    return spec !== undefined ? [spec.x, spec.seed] : n.inputs;
  };
  for (const node of liveNodes(g.nodes, Object.values(outputs), needs)) {
    const spec = rebuilt(node.outputs[0]);
    let results: Value[];
    if (spec !== undefined) results = [dropoutMaskUint32(lowered(spec.x), lowered(spec.seed), spec, dropoutSizes === undefined ? undefined : sizesInput())];
    else if (node.op === 'LogSoftmax' && options.decomposeLogSoftmax === true) results = [decomposedLogSoftmax(lowered(node.inputs[0]!), node.attrs.axis as number)];
    else results = replay(out, node, node.inputs.map((v) => (v === undefined ? undefined : lowered(v))), castTo);
    node.outputs.forEach((o, i) => map.set(o, results[i]));
  }
  const loweredOutputs: Record<string, Value> = {};
  for (const [name, v] of Object.entries(outputs)) loweredOutputs[name] = lowered(v);
  return { graph: out, outputs: loweredOutputs };
}

function inputsNamed(g: GraphBuilder, names: readonly string[], option: string): Set<Value> {
  return new Set(names.map((name) => {
    const v = g.inputs.find((x) => x.name === name);
    check(v !== undefined, () => `lowerGraph: ${option} names '${name}', which is not an input of ${g.name} (inputs: ${g.inputs.map((x) => x.name).join(', ')})`);
    check(v.dtype === 'int64', () => `lowerGraph: ${option} names ${v.toString()}, which is not int64`);
    return v;
  }));
}

/** The node again in `out`, its integer inputs and outputs narrowed or widened as the slots say. */
function replay(out: GraphBuilder, node: Node, inputs: readonly (Value | undefined)[], castTo: (v: Value, dtype: 'int32' | 'int64') => Value): Value[] {
  const int32T = inputs.some((v, i) => v !== undefined && slotOf(node.op, i) === 'T' && v.dtype === 'int32' && node.inputs[i]!.dtype === 'int64');
  const args = inputs.map((v, i) => {
    if (v === undefined) return undefined;
    const slot = slotOf(node.op, i);
    if (slot === 'shape') return castTo(v, 'int64');
    if (slot === 'T' && int32T && v.dtype === 'int64') return castTo(v, 'int32');
    return v;
  });
  let attrs = node.attrs;
  let specs = node.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape }));
  if (node.op === 'Cast' && node.outputs[0].dtype === 'int64' && args[0]!.dtype !== 'int64') {
    attrs = { ...attrs, to: OnnxDataType.int32 };
    specs = [{ dtype: 'int32', shape: node.outputs[0].shape }];
  } else if (int32T) {
    specs = specs.map((s) => (s.dtype === 'int64' ? { ...s, dtype: 'int32' } : s));
  }
  // The attributes are the node's own (typed when it was built), passed on unchanged but for Cast's `to`.
  const results = out.node(node.op, args, attrs as AttrsOf<OpName>, specs, hintOf(node.outputs[0]), { recompute: node.recompute === true, ...(node.segment !== undefined ? { segment: node.segment } : {}) });
  if (node.op === 'Concat') {
    // A symbol Concat invented for its joined axis is read from its output, as concat() arranged in g.
    const axis = node.attrs.axis as number;
    const joined = results[0].shape[axis];
    if (typeof joined === 'string' && !node.inputs.some((v) => v?.shape[axis] === joined)) out.defineSymbol(joined, results[0], axis);
  }
  return results;
}

/** `d − log Σ exp(d)` with `d = x − max(x)` along `axis` (LogSoftmax's own formula, from primitives). */
function decomposedLogSoftmax(x: Value, axis: number): Value {
  const d = sub(x, reduceMax(x, axis, true));
  return sub(d, log(reduceSum(exp(d), axis, true)));
}
