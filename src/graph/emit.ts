/**
 * Emission: a built graph → the plain ONNX structures of onnx/model.ts → bytes. Shares common
 * subexpressions, drops every node the requested outputs do not need, names the outputs, and
 * writes frozen weights as initializers (raw data, or external data through a hook). Each node is
 * named after its first output, so onnxruntime's logs (node placement, profiles) say which it is.
 *
 * With `sizes`, the graph is emitted for fixed sizes of its symbolic dimensions: the inputs and
 * outputs get static shapes, and every Shape/Size node becomes a constant. onnxruntime then sees a
 * static graph and folds all shape arithmetic (Range, the dims of a Reshape, masks built from
 * them) when it loads it, so no shape op runs per step (execution providers leave such ops to
 * the CPU).
 */
import type { GraphBuilder, Node, Value } from './builder.js';
import { check } from './errors.js';
import { encodeModel, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './onnx/model.js';
import { OPS, attrKind, type OpSpec } from './opTable.js';
import { liveNodes, shareCommonSubexpressions } from './prune.js';
import { rawBytes, type DType, type TypedData } from './dtype.js';
import { dimSize, symbolSizes, type SymbolSizes } from './memory.js';
import { isStatic, type Shape } from './shape.js';

/** What the external-data hook learns about one initializer. */
export interface InitializerInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
  readonly data: TypedData;
}

/**
 * Decides where an initializer's bytes go: return a location to store it as ONNX external data
 * (the caller writes `data` there), or undefined to embed it as raw data.
 */
export type ExternalDataHook = (init: InitializerInfo) => { location: string; offset: number; length: number } | undefined;

export interface EmitOptions {
  /** Graph outputs by name. */
  readonly outputs: Readonly<Record<string, Value>>;
  /**
   * Graph inputs, in this order. Default: the declared inputs the outputs need, in declaration
   * order. Listing an input the outputs do not need keeps it (the session then expects a feed).
   */
  readonly inputs?: readonly Value[];
  /** Default-domain opset (default 18; raised to the `since` of any op that needs a later one, e.g. BitCast: 26). */
  readonly opset?: number;
  /** Merge identical nodes (default true). */
  readonly shareSubexpressions?: boolean;
  readonly externalData?: ExternalDataHook;
  /** Emit for these sizes of the symbolic dimensions (see the module comment); each symbol the outputs need must have one. */
  readonly sizes?: SymbolSizes;
}

/** Builds the ONNX model structures for the given outputs of a graph. */
export function toOnnx(g: GraphBuilder, options: EmitOptions): OnnxModel {
  const entries = Object.entries(options.outputs);
  check(entries.length > 0, () => 'toOnnx: no outputs requested');
  for (const [name, v] of entries) check(v.graph === g, () => `toOnnx: output ${name} (${v.name}) belongs to another graph`);
  const shared = options.shareSubexpressions === false ? { nodes: g.nodes, canonical: new Map<Value, Value>() } : shareCommonSubexpressions(g.nodes);
  const canon = (v: Value): Value => shared.canonical.get(v) ?? v;
  const outputs = entries.map(([name, v]) => [name, canon(v)] as const);
  const nodes = liveNodes(shared.nodes, outputs.map(([, v]) => v));

  const used = new Set<Value>(outputs.map(([, v]) => v));
  for (const n of nodes) for (const v of n.inputs) if (v !== undefined) used.add(v);
  const needed = g.inputs.filter((v) => used.has(v));
  const inputs = options.inputs ?? needed;
  for (const v of needed) check(inputs.includes(v), () => `toOnnx: the outputs need input ${v.name}, which options.inputs does not list`);
  for (const v of inputs) check(v.source === 'input' && v.graph === g, () => `toOnnx: ${v.name} in options.inputs is not an input of this graph`);

  // Output names: rename the producing value when it is free to take the name, else add an Identity.
  const names = new Map<Value, string>();
  const taken = new Set<string>([...g.inputs.map((v) => v.name)]);
  const identities: OnnxNode[] = [];
  for (const [name, v] of outputs) {
    check(!taken.has(name), () => `toOnnx: output name '${name}' is already used by an input or another output`);
    taken.add(name);
    if (v.source === 'node' && !names.has(v)) names.set(v, name);
    else identities.push({ opType: 'Identity', inputs: [names.get(v) ?? v.name], outputs: [name] });
  }
  const nameOf = (v: Value | undefined): string => (v === undefined ? '' : names.get(v) ?? v.name);

  const sizes = options.sizes === undefined ? undefined : symbolSizes(nodes, options.sizes);
  const fixed = (shape: Shape): Shape => (sizes === undefined ? shape : shape.map((d) => dimSize(d, sizes)));
  const onnxNodes: OnnxNode[] = recomputeEarly(nodes).map((n) => (sizes !== undefined && (n.op === 'Shape' || n.op === 'Size') ? emitShapeConstant(n, nameOf, sizes) : emitNode(n, nameOf, used)));
  const initializers: OnnxTensor[] = [...used]
    .filter((v) => v.source === 'initializer')
    .sort((a, b) => a.id - b.id)
    .map((v) => emitInitializer(g, v, options.externalData));
  const info = (name: string, v: Value): OnnxValueInfo => ({ name, elemType: v.dtype, shape: fixed(v.shape) });
  const { opset, domains } = opsetsOf(nodes, options.opset ?? 18);
  return {
    opset,
    ...(Object.keys(domains).length > 0 ? { domains } : {}),
    graph: {
      name: g.name,
      nodes: [...onnxNodes, ...identities],
      inputs: inputs.map((v) => info(v.name, v)),
      outputs: outputs.map(([name, v]) => info(name, v)),
      initializers,
    },
  };
}

/**
 * The nodes in the order onnxruntime should see them: every `Constant` first, and each recompute
 * node (builder.ts) right after the last node it reads from (at the front when it reads only graph
 * inputs and constants), the rest in their order. onnxruntime orders a graph by a depth-first walk
 * back from its outputs that visits a node's highest-indexed input first (its NodeCompare: node
 * index, the position in the file). A copy made for the backward pass sits in the file just before
 * the backward node that reads it, so the walk would visit it before that node's other input, the
 * incoming gradient, and compute it (a widened weight, a recomputed block) before that gradient's
 * whole chain, holding it through the rest of the forward pass and the backward of the later
 * blocks. Placed as early as its inputs allow, it is visited after the gradient, and computed just
 * before the node that reads it. onnxruntime resolves the edges by name, so this order loads as any other.
 */
function recomputeEarly(nodes: readonly Node[]): readonly Node[] {
  if (!nodes.some((n) => n.recompute === true)) return nodes;
  // after[0]: the front; after[i + 1]: the recompute nodes placed right after kept[i].
  const kept: Node[] = [];
  const after: Node[][] = [[]];
  const slot = new Map<Node, number>();
  for (const n of nodes) {
    if (n.op === 'Constant') {
      after[0].push(n);
      slot.set(n, 0);
    } else if (n.recompute === true) {
      const at = n.inputs.reduce((m, v) => (v?.producer === undefined ? m : Math.max(m, slot.get(v.producer) ?? 0)), 0);
      after[at].push(n);
      slot.set(n, at);
    } else {
      kept.push(n);
      after.push([]);
      slot.set(n, kept.length);
    }
  }
  return [...after[0], ...kept.flatMap((n, i) => [n, ...after[i + 1]])];
}

/** The default-domain opset (at least `base`, and each op's `since`) and the other domains the nodes use. */
function opsetsOf(nodes: readonly Node[], base: number): { opset: number; domains: Record<string, number> } {
  let opset = base;
  const domains: Record<string, number> = {};
  for (const n of nodes) {
    const spec: OpSpec = OPS[n.op];
    if (spec.since !== undefined) opset = Math.max(opset, spec.since);
    if (spec.domain !== undefined) domains[spec.domain] = 1;
  }
  return { opset, domains };
}

/** `toOnnx` then protobuf encoding: bytes for `createSession`. */
export function toOnnxBytes(g: GraphBuilder, options: EmitOptions): Uint8Array {
  return encodeModel(toOnnx(g, options));
}

function emitNode(n: Node, nameOf: (v: Value | undefined) => string, used: ReadonlySet<Value>): OnnxNode {
  const spec: readonly string[] = OPS[n.op].outputs;
  // Optional outputs nobody reads are left unnamed, so onnxruntime need not produce them.
  const outputs = n.outputs.map((o, i) => (i > 0 && spec[i]?.endsWith('?') === true && !used.has(o) ? '' : nameOf(o)));
  while (outputs.length > 1 && outputs[outputs.length - 1] === '') outputs.pop();
  const attributes: Record<string, NonNullable<OnnxNode['attributes']>[string]> = {};
  for (const [key, value] of Object.entries(n.attrs)) {
    const kind = attrKind(n.op, key);
    check(kind !== undefined, () => `toOnnx: ${n.op} has no attribute ${key}`);
    attributes[key] = { kind, value } as NonNullable<OnnxNode['attributes']>[string];
  }
  const { domain } = OPS[n.op] as OpSpec;
  return { opType: n.op, name: outputs[0], inputs: n.inputs.map(nameOf), outputs, attributes, ...(domain !== undefined ? { domain } : {}) };
}

/** A Shape or Size node at fixed sizes: a Constant holding the dims (Shape's start/end honoured) or the element count. */
function emitShapeConstant(n: Node, nameOf: (v: Value | undefined) => string, sizes: SymbolSizes): OnnxNode {
  const x = n.inputs[0]!;
  const dims = x.shape.map((d) => dimSize(d, sizes));
  let values: number[];
  if (n.op === 'Size') {
    values = [dims.reduce((a, b) => a * b, 1)];
  } else {
    const at = (a: number | undefined, fallback: number): number => (a === undefined ? fallback : Math.min(Math.max(a < 0 ? a + dims.length : a, 0), dims.length));
    values = dims.slice(at(n.attrs.start as number | undefined, 0), at(n.attrs.end as number | undefined, dims.length));
  }
  const output = nameOf(n.outputs[0]);
  const value: OnnxTensor = { name: '', elemType: 'int64', dims: n.op === 'Size' ? [] : [values.length], raw: rawBytes(BigInt64Array.from(values, BigInt)) };
  return { opType: 'Constant', name: output, inputs: [], outputs: [output], attributes: { value: { kind: 'tensor', value } } };
}

function emitInitializer(g: GraphBuilder, v: Value, hook: ExternalDataHook | undefined): OnnxTensor {
  const data = g.initializerData(v);
  check(isStatic(v.shape), () => `toOnnx: initializer ${v.name} has a symbolic shape`);
  const dims = v.shape;
  const external = hook?.({ name: v.name, dtype: v.dtype, shape: dims, data });
  if (external !== undefined) return { name: v.name, elemType: v.dtype, dims, external };
  return { name: v.name, elemType: v.dtype, dims, raw: rawBytes(data) };
}
