/**
 * The graph builder: inputs, initializers, constants and nodes, each value carrying its dtype and
 * symbolic shape. Ops (src/graph/ops) are thin functions over `GraphBuilder.node`; they infer the
 * output shape at build time, so shape errors surface here with the op's name, not in onnxruntime.
 *
 * Nodes are appended in creation order, which is always a topological order (a node can only use
 * values that already exist); autodiff, pruning and emission rely on that.
 */
import { check } from './errors.js';
import { dtypeOf, rawBytes, scalarData, type DType, type TypedData } from './dtype.js';
import { formatShape, isSymbol, parseDim, numel, type Dim, type Shape } from './shape.js';
import { OPS, type AttrKind, type AttrsOf, type AttrValue, type OpName } from './opTable.js';

/** Where a value comes from. */
export type ValueSource = 'input' | 'initializer' | 'node';

/** A tensor-valued handle in a graph: name, dtype, symbolic shape and the node that makes it. */
export class Value {
  constructor(
    readonly graph: GraphBuilder,
    readonly id: number,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly source: ValueSource,
    /** The node that computes this value (undefined for inputs and initializers). */
    readonly producer: Node | undefined,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${formatShape(this.shape)}`;
  }
}

export type AnyAttrValue = AttrValue<AttrKind>;

/** One ONNX node. `inputs` holds `undefined` for an omitted optional input. */
export interface Node {
  readonly id: number;
  readonly op: OpName;
  readonly inputs: readonly (Value | undefined)[];
  readonly outputs: readonly Value[];
  readonly attrs: Readonly<Record<string, AnyAttrValue>>;
  /**
   * Cheap to compute again from graph inputs, and its output is large (a frozen weight widened to
   * float32): never shared with an identical node, and autodiff builds a fresh copy where a
   * gradient rule reads it, so the value is not held from the forward pass to the backward.
   */
  readonly recompute?: true;
  /**
   * The recomputation segment (a transformer block, {@link GraphBuilder.segment}) the node was
   * built in. Autodiff asked to recompute segments keeps only the values a segment hands to the
   * rest of the graph; the backward builds the segment again from them where its rules need it.
   */
  readonly segment?: number;
}

/** Options of {@link GraphBuilder.node}. */
export interface NodeOptions {
  /** See {@link Node.recompute}. */
  readonly recompute?: boolean;
  /** See {@link Node.segment}; default: the segment being built, if any. */
  readonly segment?: number;
}

/** The dtype and shape of a node output, as inferred by the op. */
export interface OutputSpec {
  readonly dtype: DType;
  readonly shape: Shape;
}

interface SymbolSource {
  readonly value: Value;
  readonly axis: number;
}

/** A dimension or `-1` (infer it), as Reshape targets take them. */
export type TargetDim = Dim | -1;

/** Builds one ONNX graph. See docs/graph.md for the API tour. */
export class GraphBuilder {
  private readonly nodeList: Node[] = [];
  private readonly inputList: Value[] = [];
  private readonly initData = new Map<Value, TypedData>();
  private readonly names = new Set<string>();
  private readonly symbols = new Map<string, SymbolSource>();
  private readonly scalars = new Map<string, Value>();
  private readonly shapes = new Map<Value, Value>();
  private nextId = 0;
  private segmentCount = 0;
  private openSegment: number | undefined;

  constructor(readonly name = 'fedex') {}

  /** All nodes, in creation (topological) order. */
  get nodes(): readonly Node[] {
    return this.nodeList;
  }

  /** Declared graph inputs, in declaration order. */
  get inputs(): readonly Value[] {
    return this.inputList;
  }

  /** The data of an initializer value. */
  initializerData(v: Value): TypedData {
    const data = this.initData.get(v);
    check(data !== undefined, () => `initializerData: ${v.name} is not an initializer`);
    return data;
  }

  /**
   * Declares a graph input. Dimensions are numbers or symbol names (`'batch'`, `'seq'`). Inputs
   * are where symbols are read at run time (see {@link dimsTensor}); the first input that uses a
   * symbol is its fallback source, so declare the inputs every variant of a graph needs first.
   */
  input(name: string, dtype: DType, shape: Shape): Value {
    shape.forEach((d, axis) => {
      check(typeof d === 'number' ? Number.isInteger(d) && d >= 0 : isSymbol(d), () => `input: ${name} has an invalid dimension ${String(d)} on axis ${axis} (numbers ≥ 0 or symbol names)`);
    });
    const v = this.makeValue(this.claim('input', name), dtype, shape, 'input', undefined);
    this.inputList.push(v);
    shape.forEach((d, axis) => {
      if (typeof d === 'string' && !this.symbols.has(d)) this.symbols.set(d, { value: v, axis });
    });
    return v;
  }

  /**
   * A named tensor stored in the model (a frozen weight). Emitted as an ONNX initializer with raw
   * data, or as external data when `toOnnx` is given an `externalData` hook.
   */
  initializer(name: string, data: TypedData, shape: readonly number[]): Value {
    const n = shape.reduce((a, b) => a * b, 1);
    check(data.length === n, () => `initializer: ${name} has ${data.length} values, shape ${formatShape(shape)} needs ${n}`);
    const v = this.makeValue(this.claim('initializer', name), dtypeOf(data), shape, 'initializer', undefined);
    this.initData.set(v, data);
    return v;
  }

  /** A constant tensor, emitted as a Constant node (use it for small tensors). */
  constant(data: TypedData, shape: readonly number[], hint = 'const'): Value {
    const n = shape.reduce((a, b) => a * b, 1);
    check(data.length === n, () => `constant: ${data.length} values do not fill shape ${formatShape(shape)}`);
    const dtype = dtypeOf(data);
    return this.node('Constant', [], { value: { name: '', elemType: dtype, dims: [...shape], raw: rawBytes(data) } }, [{ dtype, shape }], hint)[0];
  }

  /** A rank-0 constant, shared by every use of the same value and dtype. */
  scalar(value: number, dtype: DType): Value {
    const key = `${dtype}:${Object.is(value, -0) ? '-0' : String(value)}`;
    let v = this.scalars.get(key);
    if (v === undefined) {
      v = this.constant(scalarData(value, dtype), [], 'scalar');
      this.scalars.set(key, v);
    }
    return v;
  }

  /**
   * Appends a node. Ops call this after checking their inputs and inferring output shapes; the
   * op table types the attributes, and the input count is checked against it here.
   */
  node<N extends OpName>(op: N, inputs: readonly (Value | undefined)[], attrs: AttrsOf<N>, outputs: readonly OutputSpec[], hint?: string, options: NodeOptions = {}): Value[] {
    const spec: readonly string[] = OPS[op].inputs;
    const variadic = spec.some((s) => s.endsWith('...'));
    const required = spec.filter((s) => !s.endsWith('?') && !s.endsWith('...')).length;
    check(variadic ? inputs.length >= 1 : inputs.length >= required && inputs.length <= spec.length, () => `${op}: got ${inputs.length} inputs, expects ${variadic ? 'at least 1' : spec.join(', ') || 'none'}`);
    inputs.forEach((v, i) => {
      check(v !== undefined || spec[i]?.endsWith('?') === true, () => `${op}: input ${spec[i]} is required`);
      check(v === undefined || v.graph === this, () => `${op}: input ${v?.name} belongs to another graph`);
    });
    const id = this.nextId++;
    const base = hint ?? op.charAt(0).toLowerCase() + op.slice(1);
    const outs: Value[] = [];
    const segment = options.segment ?? this.openSegment;
    const node: Node = {
      id,
      op,
      inputs: [...inputs],
      outputs: outs,
      attrs: { ...attrs } as Record<string, AnyAttrValue>,
      ...(options.recompute === true ? { recompute: true as const } : {}),
      ...(segment !== undefined ? { segment } : {}),
    };
    outputs.forEach((o, k) => {
      outs.push(this.makeValue(this.claim(op, outputs.length > 1 ? `${base}_${id}_${k}` : `${base}_${id}`), o.dtype, o.shape, 'node', node));
    });
    this.nodeList.push(node);
    return outs;
  }

  /**
   * Runs `build` with every node it appends in one new recomputation segment ({@link Node.segment}):
   * a model wraps each transformer block in one. Segments do not nest.
   */
  segment<T>(build: () => T): T {
    check(this.openSegment === undefined, () => `segment: segment ${this.openSegment} is still open; segments do not nest`);
    this.openSegment = this.segmentCount++;
    try {
      return build();
    } finally {
      this.openSegment = undefined;
    }
  }

  /** `Shape(x)` as an int64 1-D value, one per value. */
  shapeOf(x: Value): Value {
    let s = this.shapes.get(x);
    if (s === undefined) {
      s = this.node('Shape', [x], {}, [{ dtype: 'int64', shape: [x.rank] }], 'shape')[0];
      this.shapes.set(x, s);
    }
    return s;
  }

  /** The number of elements of `x` as an int64 scalar value. */
  sizeOf(x: Value): Value {
    return this.node('Size', [x], {}, [{ dtype: 'int64', shape: [] }], 'size')[0];
  }

  /**
   * An int64 1-D tensor holding `dims` at run time: numbers (and -1) become constants; symbols are
   * read from the shape of a graph input that has them (products of symbols are multiplied). The
   * source is an input that `near` is computed from when there is one (so a graph that needs only
   * `ids` does not start needing `labels` too), else the first input that declared the symbol.
   */
  dimsTensor(dims: readonly TargetDim[], near?: Value): Value {
    const parts: Value[] = [];
    let run: number[] = [];
    const flush = (): void => {
      if (run.length > 0) parts.push(this.constant(BigInt64Array.from(run, BigInt), [run.length], 'dims'));
      run = [];
    };
    for (const d of dims) {
      if (typeof d === 'number') {
        run.push(d);
        continue;
      }
      flush();
      parts.push(this.symbolTensor(d, near));
    }
    flush();
    if (parts.length === 1) return parts[0];
    return this.node('Concat', parts, { axis: 0 }, [{ dtype: 'int64', shape: [dims.length] }], 'dims')[0];
  }

  /** A `[1]` int64 tensor holding a symbolic dimension at run time. */
  private symbolTensor(d: string, near: Value | undefined): Value {
    const { coef, syms } = parseDim(d);
    let acc: Value | undefined;
    for (const s of syms) {
      const src = (near === undefined ? undefined : upstreamSource(near, s)) ?? this.symbols.get(s);
      check(src !== undefined, () => `dims: symbol '${s}' (in '${d}') is not a dimension of any graph input, so its run-time value is unknown`);
      const part = this.node('Shape', [src.value], { start: src.axis, end: src.axis + 1 }, [{ dtype: 'int64', shape: [1] }], `dim_${s}`)[0];
      acc = acc === undefined ? part : this.node('Mul', [acc, part], {}, [{ dtype: 'int64', shape: [1] }], 'dim')[0];
    }
    if (coef !== 1 || acc === undefined) {
      const c = this.constant(BigInt64Array.of(BigInt(coef)), [1], 'dims');
      acc = acc === undefined ? c : this.node('Mul', [acc, c], {}, [{ dtype: 'int64', shape: [1] }], 'dim')[0];
    }
    return acc;
  }

  /** Makes `sym` readable at run time from axis `axis` of `value` (ops that invent symbols call this). */
  defineSymbol(sym: string, value: Value, axis: number): void {
    check(isSymbol(sym) && !this.symbols.has(sym), () => `defineSymbol: '${sym}' is not a new symbol name`);
    this.symbols.set(sym, { value, axis });
  }

  /** Number of elements of `x`'s shape (symbolic when the shape is). */
  numel(x: Value): Dim {
    return numel(x.shape);
  }

  private claim(op: string, name: string): string {
    check(!this.names.has(name), () => `${op}: the name '${name}' is already used in this graph`);
    this.names.add(name);
    return name;
  }

  private makeValue(name: string, dtype: DType, shape: Shape, source: ValueSource, producer: Node | undefined): Value {
    return new Value(this, this.nextId++, name, dtype, [...shape], source, producer);
  }
}

/** The first graph input upstream of `v` (depth-first, inputs in order) that has `sym` as a dimension. */
function upstreamSource(v: Value, sym: string): SymbolSource | undefined {
  const seen = new Set<Value>();
  const stack = [v];
  while (stack.length > 0) {
    const u = stack.pop()!;
    if (seen.has(u)) continue;
    seen.add(u);
    if (u.source === 'input') {
      const axis = u.shape.indexOf(sym);
      if (axis >= 0) return { value: u, axis };
    }
    const inputs = u.producer?.inputs ?? [];
    for (let i = inputs.length - 1; i >= 0; i--) {
      const w = inputs[i];
      if (w !== undefined) stack.push(w);
    }
  }
  return undefined;
}
