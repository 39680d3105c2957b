// Test harness for model graphs: feeds every graph input of a ModelGraph from plain float64 maps
// (converted to the graph's dtype), runs logits and loss through onnxruntime, and makes seeded
// random weights and LoRA factors. Shared by the Llama and BERT tests.
import type { Value } from '../../../src/graph/builder.js';
import type { LoraSettings, ModelGraph } from '../../../src/model/types.js';
import { random, runGraph, type Feed } from '../../graph/gradCheck.js';

/** Seeded uniform data in [lo, hi). */
export function uniform(n: number, seed: number, lo: number, hi: number): Float64Array {
  return Float64Array.from(random(n, seed, lo, hi));
}

/** LoRA settings with test defaults. */
export function loraSettings(overrides: Partial<LoraSettings> = {}): LoraSettings {
  return { r: 2, alpha: 4, useRslora: false, dropout: 0, targetModules: ['q_proj', 'v_proj'], freezeA: false, modulesToSave: [], ...overrides };
}

/** Non-zero random A `[r, in]` and B `[out, r]` for every adapted module, keyed by input name, plus the reference's view by path. */
export function randomFactors(model: ModelGraph, r: number, seed: number): { byInput: Map<string, Float64Array>; byPath: Map<string, { a: Float64Array; b: Float64Array }> } {
  const byInput = new Map<string, Float64Array>();
  const byPath = new Map<string, { a: Float64Array; b: Float64Array }>();
  model.modules.forEach((m, i) => {
    const a = uniform(r * m.inFeatures, seed + 2 * i, -0.3, 0.3);
    const b = uniform(m.outFeatures * r, seed + 2 * i + 1, -0.3, 0.3);
    byInput.set(m.aInput, a).set(m.bInput, b);
    byPath.set(m.path, { a, b });
  });
  return { byInput, byPath };
}

export interface ModelData {
  /** Float data by graph input name (checkpoint tensors, LoRA factors, trainable heads); float32 data feeds a float32 graph as is. */
  readonly values: ReadonlyMap<string, Float64Array | Float32Array>;
  readonly ids: readonly (readonly number[])[];
  readonly mask: readonly (readonly number[])[];
  /** `[batch][seq]` (causal LM) or `[batch]` (classification). */
  readonly labels: readonly (readonly number[])[] | readonly number[];
  readonly seed?: bigint;
}

function ints(rows: readonly (readonly number[])[]): BigInt64Array {
  return BigInt64Array.from(rows.flat(), (v) => BigInt(v));
}

/** Feeds for every declared input of the model's graph. */
export function modelFeeds(model: ModelGraph, data: ModelData): Feed[] {
  const batch = data.ids.length;
  const seq = data.ids[0].length;
  const feeds: Feed[] = [];
  for (const v of model.graph.inputs) {
    if (v === model.inputIds) feeds.push({ value: v, data: ints(data.ids), dims: [batch, seq] });
    else if (v === model.attentionMask) feeds.push({ value: v, data: ints(data.mask), dims: [batch, seq] });
    else if (v === model.labels) {
      const labels = data.labels;
      const flat = typeof labels[0] === 'number' ? BigInt64Array.from(labels as number[], (x) => BigInt(x)) : ints(labels as number[][]);
      feeds.push({ value: v, data: flat, dims: model.labels.rank === 1 ? [batch] : [batch, seq] });
    } else if (v.dtype === 'int64') {
      feeds.push({ value: v, data: BigInt64Array.of(data.seed ?? 0n), dims: [] });
    } else {
      feeds.push(floatFeed(v, data.values));
    }
  }
  return feeds;
}

function floatFeed(v: Value, values: ReadonlyMap<string, Float64Array | Float32Array>): Feed {
  const src = values.get(v.name);
  if (src === undefined) throw new Error(`harness: no data for input ${v.name}`);
  const dims = v.shape.map((d) => {
    if (typeof d !== 'number') throw new Error(`harness: weight input ${v.name} has a symbolic shape`);
    return d;
  });
  if (src.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`harness: ${v.name} has ${src.length} values for shape [${dims.join(', ')}]`);
  const same = v.dtype === 'float64' ? src instanceof Float64Array : src instanceof Float32Array;
  return { value: v, data: same ? src : v.dtype === 'float64' ? Float64Array.from(src) : Float32Array.from(src), dims };
}

/** Runs the model once: logits (flat) and the scalar loss. */
export async function runModel(model: ModelGraph, data: ModelData): Promise<{ logits: number[]; loss: number }> {
  const out = await runGraph(model.graph, modelFeeds(model, data), { logits: model.logits, loss: model.loss });
  return { logits: out.logits.data, loss: out.loss.data[0] };
}
