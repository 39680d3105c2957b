/**
 * Reverse-mode autodiff over the graph. `grad(loss, params)` appends the backward nodes to the
 * same graph and returns one gradient value per parameter. Only nodes that lie on a path from a
 * parameter to the loss are differentiated, and within a node only the inputs on such a path get
 * gradients (a frozen weight W0 in `x @ W0` costs no dW0). Fan-out gradients are summed with Add.
 * A rule reading a value made by a `recompute` node (a frozen weight widened to float32) reads a
 * copy made again at that point of the backward pass, so the forward's copy is not kept alive.
 *
 * Activation recomputation (`recomputeSegments`): a node built in a segment (a transformer block,
 * GraphBuilder.segment) whose outputs only that segment reads is recomputed for the backward pass,
 * once, from the values the segment keeps (its inputs from outside it: the block's input, weights,
 * masks) — the first time one of the block's gradient rules reads it. The forward's values are
 * then freed inside the forward pass, so the backward holds one block's activations at a time
 * instead of every block's. The copies are `recompute` nodes, so nothing merges them back into the
 * forward ones (prune.ts, compile.ts) and emit.ts orders them for onnxruntime.
 */
import type { Node, Value } from './builder.js';
import { isFloat } from './dtype.js';
import { check, GraphError } from './errors.js';
import type { GradContext } from './gradRule.js';
import type { AttrsOf, OpName } from './opTable.js';
import { sumToShape } from './ops/reduceSum.js';
import { add } from './ops/add.js';
import { GRADIENTS } from './ops/registry.js';
import { formatShape, shapeEquals } from './shape.js';

/**
 * Gradients of a scalar float `loss` with respect to each of `params` (any float values of the
 * same graph, usually inputs). Throws if the loss is not a scalar, a parameter does not reach the
 * loss, or an op on the way has no gradient rule.
 */
export interface GradOptions {
  /** Recompute what segments do not hand on instead of keeping it for the backward (see the module comment). */
  readonly recomputeSegments?: boolean;
}

export function grad(loss: Value, params: readonly Value[], options: GradOptions = {}): Value[] {
  const g = loss.graph;
  check(loss.rank === 0, () => `grad: loss ${loss.toString()} is not a scalar (reduce it first, e.g. with reduceMean)`);
  check(isFloat(loss.dtype), () => `grad: loss ${loss.toString()} is not float32/float64`);
  check(params.length > 0, () => 'grad: no parameters given');
  params.forEach((p, i) => {
    check(p.graph === g, () => `grad: parameter ${p.name} belongs to another graph`);
    check(isFloat(p.dtype), () => `grad: parameter ${p.name} is ${p.dtype}; only float32/float64 values have gradients`);
    check(params.indexOf(p) === i, () => `grad: parameter ${p.name} is listed twice`);
  });
  const nodes = [...g.nodes];
  const fromParams = forwardReach(nodes, params);
  const toLoss = backwardReach(nodes, loss);
  for (const p of params) check(toLoss.has(p), () => `grad: parameter ${p.name} does not reach the loss ${loss.name}`);
  const active = (v: Value | undefined): v is Value => v !== undefined && fromParams.has(v) && toLoss.has(v) && isFloat(v.dtype);
  const again = new Recomputation(options.recomputeSegments === true ? internalNodes(nodes, loss) : new Set());

  const pending = new Map<Value, Value[]>([[loss, [g.scalar(1, loss.dtype)]]]);
  const total = (v: Value): Value | undefined => {
    const parts = pending.get(v);
    if (parts === undefined) return undefined;
    const sum = parts.reduce((acc, part) => add(acc, part));
    pending.set(v, [sum]);
    return sum;
  };

  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    if (!node.outputs.some(active)) continue;
    const dys = node.outputs.map((o) => (active(o) ? total(o) : undefined));
    if (dys.every((d) => d === undefined)) continue;
    const needs = node.inputs.map(active);
    if (!needs.some(Boolean)) continue;
    const rule = GRADIENTS.get(node.op);
    if (rule === undefined) {
      throw new GraphError(`grad: ${node.op} (${node.outputs[0].name}) has no gradient rule but lies between the parameters and the loss`);
    }
    // A rule reads recomputed values (a widened frozen weight, a block's activations) from copies
    // built here, just before the backward nodes that use them: the forward's values are freed in the forward.
    const inputs = node.inputs.map((v) => again.value(v));
    // Outputs are copied only when the rule reads them (softmax's does, a matmul's does not), once.
    let outputs: readonly Value[] | undefined;
    const ctx: GradContext = {
      node,
      inputs,
      get outputs() {
        return (outputs ??= again.outputs(node));
      },
      dys,
      needs,
    };
    const grads = rule.grad(ctx);
    node.inputs.forEach((x, k) => {
      if (!needs[k] || x === undefined) return;
      const given = grads[k];
      check(given !== undefined, () => `grad: the ${node.op} rule gave no gradient for input ${k} (${x.name})`);
      // Rules give the gradient at the broadcast shape; it is summed back to the input's shape here, once.
      const dx = shapeEquals(given.shape, x.shape) ? given : sumToShape(given, x.shape);
      check(dx.dtype === x.dtype && shapeEquals(dx.shape, x.shape), () => `grad: the ${node.op} rule gave ${dx.dtype}${formatShape(dx.shape)} for ${x.toString()}`);
      const parts = pending.get(x);
      if (parts === undefined) pending.set(x, [dx]);
      else parts.push(dx);
    });
  }
  return params.map((p) => {
    const dp = total(p);
    check(dp !== undefined, () => `grad: no gradient reached parameter ${p.name}`);
    return dp;
  });
}

/**
 * The copies the backward reads instead of forward values. A `recompute` node (a widened weight)
 * is copied afresh for each read, with every recompute producer upstream of it (bfloat16's BitCast
 * before its Cast); a segment-internal node is copied once and its copy shared by all the rules
 * that read it, its inputs resolved the same way, down to values the forward keeps.
 */
class Recomputation {
  private readonly copies = new Map<Node, readonly Value[]>();

  constructor(private readonly internal: ReadonlySet<Node>) {}

  /** What the backward reads for forward value `v`. */
  value(v: Value | undefined): Value | undefined {
    const node = v?.producer;
    if (v === undefined || node === undefined || (node.recompute !== true && !this.internal.has(node))) return v;
    return this.outputs(node)[node.outputs.indexOf(v)];
  }

  /** What the backward reads for `node`'s outputs. */
  outputs(node: Node): readonly Value[] {
    if (node.recompute !== true && !this.internal.has(node)) return node.outputs;
    const shared = this.copies.get(node);
    if (shared !== undefined) return shared;
    const inputs = node.inputs.map((x) => this.value(x));
    const g = node.outputs[0].graph;
    const copy = g.node(node.op, inputs, node.attrs as AttrsOf<OpName>, node.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape })), `${node.op.charAt(0).toLowerCase()}${node.op.slice(1)}_recomputed`, { recompute: true });
    if (this.internal.has(node)) this.copies.set(node, copy);
    return copy;
  }
}

/**
 * The nodes of segments whose outputs no node outside their segment reads (nor is any the loss):
 * what activation recomputation does not keep. `recompute` nodes are copied per read anyway.
 */
function internalNodes(nodes: readonly Node[], loss: Value): Set<Node> {
  const handedOn = new Set<Value>([loss]);
  for (const n of nodes) {
    for (const v of n.inputs) if (v?.producer !== undefined && v.producer.segment !== n.segment) handedOn.add(v);
  }
  return new Set(nodes.filter((n) => n.segment !== undefined && n.recompute !== true && !n.outputs.some((o) => handedOn.has(o))));
}

/** Values that depend on any of `params` (through float values only). */
function forwardReach(nodes: readonly Node[], params: readonly Value[]): Set<Value> {
  const reach = new Set<Value>(params);
  for (const n of nodes) {
    if (n.inputs.some((v) => v !== undefined && reach.has(v) && isFloat(v.dtype))) {
      for (const o of n.outputs) reach.add(o);
    }
  }
  return reach;
}

/** Values the loss depends on. */
function backwardReach(nodes: readonly Node[], loss: Value): Set<Value> {
  const reach = new Set<Value>([loss]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (n.outputs.some((o) => reach.has(o))) { for (const v of n.inputs) if (v !== undefined) reach.add(v); }
  }
  return reach;
}
