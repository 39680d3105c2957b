/**
 * Graph clean-up before emission: common-subexpression sharing (identical op, inputs and
 * attributes compute the same value, since every op here is deterministic) and dead-node
 * elimination (keep only what the requested outputs need).
 */
import type { AnyAttrValue, Node, Value } from './builder.js';

/** Large constants are not hashed for sharing; they are rarely duplicated and costly to compare. */
const MAX_SHARED_CONSTANT_BYTES = 4096;

/** Nodes rewritten to use canonical values, and the map from every value to its canonical one. */
export interface Shared {
  readonly nodes: readonly Node[];
  readonly canonical: ReadonlyMap<Value, Value>;
}

/** A string that is equal for equal attribute values; undefined for values not worth comparing. */
function attrKey(value: AnyAttrValue): string | undefined {
  if (typeof value !== 'object' || Array.isArray(value)) return JSON.stringify(value);
  const t = value as { elemType: string; dims: readonly number[]; raw?: Uint8Array };
  if (t.raw === undefined || t.raw.length > MAX_SHARED_CONSTANT_BYTES) return undefined;
  return `${t.elemType}[${t.dims.join(',')}]:${t.raw.join(',')}`;
}

function nodeKey(node: Node, inputs: readonly (Value | undefined)[]): string {
  const attrs = Object.keys(node.attrs).sort().map((k) => `${k}=${attrKey(node.attrs[k]) ?? `#${node.id}`}`);
  return `${node.op}(${inputs.map((v) => (v === undefined ? '-' : String(v.id))).join(',')}){${attrs.join(';')}}`;
}

/**
 * Merges nodes that compute the same thing, but for `recompute` nodes (builder.ts). Returns nodes
 * whose inputs point at canonical values; look up any other value (e.g. a requested output) in
 * `canonical`.
 */
export function shareCommonSubexpressions(nodes: readonly Node[]): Shared {
  const canonical = new Map<Value, Value>();
  const seen = new Map<string, Node>();
  const out: Node[] = [];
  const canon = (v: Value | undefined): Value | undefined => (v === undefined ? undefined : canonical.get(v) ?? v);
  for (const node of nodes) {
    const inputs = node.inputs.map(canon);
    if (node.recompute === true) {
      // Its copies are deliberate: one per use, each freed after it (builder.ts, Node.recompute).
      out.push(inputs.every((v, i) => v === node.inputs[i]) ? node : { ...node, inputs });
      continue;
    }
    const key = nodeKey(node, inputs);
    const twin = seen.get(key);
    if (twin !== undefined && twin.outputs.length === node.outputs.length) {
      node.outputs.forEach((o, i) => canonical.set(o, twin.outputs[i]));
      continue;
    }
    const rewritten = inputs.every((v, i) => v === node.inputs[i]) ? node : { ...node, inputs };
    seen.set(key, rewritten);
    out.push(rewritten);
  }
  return { nodes: out, canonical };
}

/**
 * The nodes that the `outputs` depend on, in their original (topological) order. `inputsOf` says
 * what a kept node needs (default its inputs; a rewrite that rebuilds a node from other values
 * names those instead).
 */
export function liveNodes(nodes: readonly Node[], outputs: readonly Value[], inputsOf: (n: Node) => readonly (Value | undefined)[] = (n) => n.inputs): Node[] {
  const needed = new Set<Value>(outputs);
  const keep: Node[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    keep.push(n);
    for (const v of inputsOf(n)) if (v !== undefined) needed.add(v);
  }
  return keep.reverse();
}
