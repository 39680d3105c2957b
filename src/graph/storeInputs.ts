/**
 * Stores frozen float32 inputs below float32: a built graph rewritten into a new one where each
 * named input is declared in its stored form (nn/storedWeight.ts) and widened to float32 at each of
 * its uses. It runs on a model's forward graph, before autodiff, so the gradient rules see the
 * widening nodes (recompute nodes: autodiff widens again where the backward needs the weight).
 *
 * - A `Gather` along axis 0 of a stored input (an embedding lookup) becomes a gather of the stored
 *   rows widened after it ({@link gatherRows}): the rest of the table stays stored.
 * - Any other use reads its own widened copy, made just before it; nothing is widened twice for
 *   one node.
 *
 * Every other node is copied as it is, with its recompute flag, the symbols a Concat invented and
 * the dropout masks it made (nn/dropout.ts), so the graph lowers for WebGPU as before.
 */
import { GraphBuilder, type Node, type Value } from './builder.js';
import { check } from './errors.js';
import { dropoutMaskOf, recordDropoutMask } from './nn/dropout.js';
import { declareStored, gatherRows, unstorableReason, widen, type StoredForm, type StoredWeight } from './nn/storedWeight.js';
import type { AttrsOf, OpName } from './opTable.js';
import { formatShape, isStatic } from './shape.js';

/** A graph with some inputs stored, and the way from the original's values to the new ones. */
export interface StoredGraph {
  readonly graph: GraphBuilder;
  /** The new graph's value for a value of the original (a stored input itself has none: it is no longer float32). */
  value(v: Value): Value;
  /** The stored weights, by input name. */
  readonly stored: ReadonlyMap<string, StoredWeight>;
}

/** `logSoftmax_12` → `logSoftmax`. */
function hintOf(v: Value): string {
  return v.name.replace(/(_\d+)+$/, '');
}

/** Rewrites `g` with the inputs named in `forms` stored in their form (see the module comment). */
export function storeInputs(g: GraphBuilder, forms: ReadonlyMap<string, StoredForm>): StoredGraph {
  for (const name of forms.keys()) {
    const v = g.inputs.find((x) => x.name === name);
    check(v !== undefined, () => `storeInputs: '${name}' is not an input of ${g.name}`);
    check(v.dtype === 'float32' && isStatic(v.shape), () => `storeInputs: ${v.toString()} is not a float32 input of static shape`);
    const why = unstorableReason(v.shape as number[], forms.get(name)!);
    check(why === undefined, () => `storeInputs: ${name} ${formatShape(v.shape)} cannot be stored as ${forms.get(name)!.kind}: ${why ?? ''}`);
  }
  const out = new GraphBuilder(g.name);
  const map = new Map<Value, Value>();
  const stored = new Map<Value, StoredWeight>();
  for (const v of g.inputs) {
    const form = forms.get(v.name);
    if (form === undefined) map.set(v, out.input(v.name, v.dtype, v.shape));
    else stored.set(v, declareStored(out, v.name, v.shape as number[], form));
  }
  const value = (v: Value): Value => {
    let w = map.get(v);
    if (w === undefined) {
      check(!stored.has(v), () => `storeInputs: ${v.name} is stored as ${stored.get(v)!.form.kind}; read it through a node`);
      check(v.source === 'initializer', () => `storeInputs: ${v.toString()} is used before it is computed`);
      w = out.initializer(v.name, g.initializerData(v), v.shape as number[]);
      map.set(v, w);
    }
    return w;
  };
  for (const node of g.nodes) {
    const results = replay(out, node, stored, value);
    node.outputs.forEach((o, i) => map.set(o, results[i]));
    node.outputs.forEach((o, i) => {
      const spec = dropoutMaskOf(o);
      if (spec !== undefined) recordDropoutMask(results[i], { ...spec, x: value(spec.x), seed: value(spec.seed) });
    });
  }
  return { graph: out, value, stored: new Map([...stored.values()].map((w) => [w.name, w])) };
}

/** One node in `out`: a stored embedding lookup as a gather of stored rows, else the node over widened copies. */
function replay(out: GraphBuilder, node: Node, stored: ReadonlyMap<Value, StoredWeight>, value: (v: Value) => Value): Value[] {
  const table = node.inputs[0] === undefined ? undefined : stored.get(node.inputs[0]);
  if (node.op === 'Gather' && table !== undefined && ((node.attrs.axis as number | undefined) ?? 0) === 0) {
    return [gatherRows(table, value(node.inputs[1]!))];
  }
  const widened = new Map<Value, Value>();
  const inputs = node.inputs.map((v) => {
    if (v === undefined) return undefined;
    const w = stored.get(v);
    if (w === undefined) return value(v);
    let wide = widened.get(v);
    if (wide === undefined) widened.set(v, wide = widen(w));
    return wide;
  });
  const results = out.node(node.op, inputs, node.attrs as AttrsOf<OpName>, node.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape })), hintOf(node.outputs[0]), { recompute: node.recompute === true,
    ...(node.segment !== undefined ? { segment: node.segment } : {}) });
  if (node.op === 'Concat') {
    // A symbol Concat invented for its joined axis is read from its output, as concat() arranged in the original.
    const axis = node.attrs.axis as number;
    const joined = results[0].shape[axis];
    if (typeof joined === 'string' && !node.inputs.some((v) => v?.shape[axis] === joined)) out.defineSymbol(joined, results[0], axis);
  }
  return results;
}
