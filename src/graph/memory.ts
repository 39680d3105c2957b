/**
 * How much memory a graph's run holds at once, for given sizes of its symbolic dimensions.
 *
 * The model is a liveness count over the nodes the outputs need, in the order they are emitted
 * (after the same common-subexpression sharing and dead-node pruning as `toOnnx`): a node's outputs
 * are allocated when it runs and freed after their last reader; requested outputs stay to the end;
 * graph inputs are held the whole run. For a training graph this is exactly "the forward
 * activations the backward still needs, plus what the node now running makes": a forward value
 * read by a gradient rule stays live until that backward node.
 *
 * It is a model of what onnxruntime holds, not a trace: onnxruntime fuses nodes and writes some
 * outputs in place (both lower the real figure), may pick another topological order, keeps freed
 * blocks in its arena, and its kernels take scratch space of their own. The trainer
 * (src/trainer/memoryPlan.ts) states how far apart the two were, measured.
 */
import type { Node, Value } from './builder.js';
import type { GraphBuilder } from './builder.js';
import type { DType } from './dtype.js';
import { check, GraphError } from './errors.js';
import { liveNodes, shareCommonSubexpressions } from './prune.js';
import { formatShape, parseDim, type Dim } from './shape.js';

/** Sizes of symbolic dimensions, e.g. `{ batch: 8, seq: 128 }`. */
export type SymbolSizes = Readonly<Record<string, number>>;

const DTYPE_BYTES: Readonly<Record<DType, number>> = { float32: 4, float64: 8, int64: 8, int32: 4, uint32: 4, bool: 1, float16: 2, bfloat16: 2, uint16: 2, uint8: 1 };

/** Bytes per element of a dtype (bool: one byte, as onnxruntime stores it). */
export function dtypeBytes(dtype: DType): number {
  return DTYPE_BYTES[dtype];
}

/** The size of a dimension given the sizes of its symbols; the error names the unknown symbol. */
export function dimSize(d: Dim, sizes: SymbolSizes): number {
  const { coef, syms } = parseDim(d);
  return syms.reduce((acc, s) => {
    const n = sizes[s];
    check(n !== undefined, () => `dimSize: no size given for symbol '${s}' (in '${String(d)}'; known: ${Object.keys(sizes).join(', ') || 'none'})`);
    return acc * n;
  }, coef);
}

/** What one run holds, in bytes, at the given symbol sizes. */
export interface MemoryProfile {
  /** Graph inputs the outputs need (weights, parameters, optimizer state, batch tensors): held the whole run. */
  readonly inputBytes: number;
  /** The same bytes by input name. */
  readonly inputSizes: Readonly<Record<string, number>>;
  /** Most bytes of node outputs alive at once (the requested outputs included, as they stay to the end). */
  readonly peakBytes: number;
  /** The node running when the peak is reached: `op name` (for messages and tuning). */
  readonly peakAt: string;
  /** Bytes of the requested outputs. */
  readonly outputBytes: number;
  /** Nodes counted. */
  readonly nodes: number;
}

/**
 * `given` plus the sizes of the symbols that ops invent while building (Concat over a symbolic
 * axis names its result dim after itself): each is the sum of its inputs' sizes on that axis.
 */
export function symbolSizes(nodes: readonly Node[], given: SymbolSizes): Record<string, number> {
  const sizes: Record<string, number> = { ...given };
  for (const n of nodes) {
    if (n.op !== 'Concat') continue;
    const axis = n.attrs.axis as number;
    const out = n.outputs[0].shape[axis];
    if (typeof out !== 'string' || out in sizes || parseDim(out).syms.length !== 1) continue;
    sizes[out] = n.inputs.reduce((s, x) => s + (x === undefined ? 0 : dimSize(x.shape[axis], sizes)), 0);
  }
  return sizes;
}

/** The memory profile of a graph's run as a function of the symbol sizes (the node list is prepared once). */
export type MemoryModel = (sizes: SymbolSizes) => MemoryProfile;

/**
 * Prepares the profile of computing `outputs` of `g` (see the module comment for what is
 * counted); call the result with the symbol sizes.
 */
export function memoryModel(g: GraphBuilder, outputs: readonly Value[]): MemoryModel {
  check(outputs.length > 0, () => 'memoryModel: no outputs');
  const shared = shareCommonSubexpressions(g.nodes);
  const wanted = outputs.map((v) => shared.canonical.get(v) ?? v);
  const nodes = liveNodes(shared.nodes, wanted);
  const kept = new Set<Value>(wanted);
  const lastUse = new Map<Value, number>();
  const inputs = new Set<Value>();
  nodes.forEach((n, i) => {
    for (const v of n.inputs) {
      if (v === undefined) continue;
      lastUse.set(v, i);
      if (v.source !== 'node') inputs.add(v);
    }
  });
  for (const v of wanted) if (v.source !== 'node') inputs.add(v);
  const done = (v: Value | undefined): v is Value => v !== undefined && v.source === 'node' && !kept.has(v);
  // Per node: the values freed once it ran (inputs read for the last time here, outputs nobody reads).
  const freed = nodes.map((n, i) => [
    ...[...new Set(n.inputs)].filter((v): v is Value => done(v) && lastUse.get(v) === i),
    ...n.outputs.filter((o) => done(o) && !lastUse.has(o)),
  ]);

  return (sizes) => {
    const all = symbolSizes(nodes, sizes);
    const bytes = (v: Value): number => {
      let n = dtypeBytes(v.dtype);
      for (const d of v.shape) {
        try {
          n *= dimSize(d, all);
        } catch (err) {
          throw new GraphError(`memoryModel: ${v.name} ${formatShape(v.shape)}: ${(err as Error).message}`);
        }
      }
      return n;
    };
    let live = 0;
    let peak = 0;
    let peakAt = 'none';
    nodes.forEach((n, i) => {
      for (const o of n.outputs) live += bytes(o);
      if (live > peak) {
        peak = live;
        peakAt = `${n.op} ${n.outputs[0]?.name ?? ''}`;
      }
      for (const v of freed[i]) live -= bytes(v);
    });
    const inputSizes = Object.fromEntries([...inputs].map((v) => [v.name, bytes(v)]));
    return {
      inputBytes: Object.values(inputSizes).reduce((s, b) => s + b, 0),
      inputSizes,
      peakBytes: peak,
      peakAt,
      outputBytes: [...kept].reduce((s, v) => s + bytes(v), 0),
      nodes: nodes.length,
    };
  };
}
