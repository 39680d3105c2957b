// Test harness for model graphs: feeds every graph input of a ModelGraph from plain float64 maps
// (converted to the graph's dtype), runs logits and loss through onnxruntime, and makes seeded
// random weights and LoRA factors. Shared by the Llama and BERT tests.
import type { Value } from '../../../src/graph/builder.js';
import type { LoraSettings, ModelGraph } from '../../../src/model/types.js';
import { grad } from '../../../src/graph/autodiff.js';
import { assertClose, random, runGraph, type Feed } from '../../graph/gradCheck.js';

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

/** Largest |got − want| over max |want| (0 when both are zero). */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return scale === 0 ? err : err / scale;
}

/** What a float64 reference gives for the real-width checks. */
export interface ReferenceOutput {
  readonly loss: number;
  readonly logits: ArrayLike<number>;
  /** d loss / d A and d B per module path. */
  readonly grads: ReadonlyMap<string, { readonly a: ArrayLike<number>; readonly b: ArrayLike<number> }>;
}

/**
 * The real-width check of a decoder family: rank-2 LoRA factors (A of std 1/√in, B of ±0.02, so the
 * adapters' share stays small, as after some training) on `weights`; the float32 graph's loss, logits
 * and every LoRA gradient against `reference(factors)`, within `lossRtol` (relative) and `tensorTol`
 * (of each tensor's largest magnitude). Returns the measured errors for the test's diagnostic.
 */
export async function checkRealShapes(
  model: ModelGraph,
  weights: ReadonlyMap<string, Float32Array>,
  data: { ids: number[][]; mask: number[][]; labels: number[][] },
  reference: (factors: ReadonlyMap<string, { a: Float32Array; b: Float32Array }>) => ReferenceOutput,
  tol: { lossRtol: number; tensorTol: number },
): Promise<{ loss: number; lossErr: number; worst: number; errors: string[] }> {
  const factors = new Map<string, { a: Float32Array; b: Float32Array }>();
  model.modules.forEach((m, i) => factors.set(m.path, {
    a: Float32Array.from(uniform(2 * m.inFeatures, 100 + 2 * i, -Math.sqrt(3 / m.inFeatures), Math.sqrt(3 / m.inFeatures))),
    b: Float32Array.from(uniform(m.outFeatures * 2, 101 + 2 * i, -0.02, 0.02)),
  }));
  const values = new Map<string, Float32Array>([...weights, ...model.modules.flatMap((m) => [[m.aInput, factors.get(m.path)!.a], [m.bInput, factors.get(m.path)!.b]] as const)]);
  const ds = grad(model.loss, model.trainable);
  const out = await runGraph(model.graph, modelFeeds(model, { values, ...data }), { loss: model.loss, logits: model.logits, ...Object.fromEntries(ds.map((dv, i) => [`d${i}`, dv])) });
  const ref = reference(factors);
  const errors: string[] = [];
  const lossErr = Math.abs(out.loss.data[0] - ref.loss) / Math.abs(ref.loss);
  if (!(lossErr <= tol.lossRtol)) errors.push(`loss ${out.loss.data[0]} vs reference ${ref.loss}: relative error ${lossErr.toExponential(2)}`);
  let worst = relErr(out.logits.data, ref.logits);
  if (worst > tol.tensorTol) errors.push(`logits: relative error ${worst.toExponential(2)}`);
  model.trainable.forEach((input, i) => {
    const m = model.modules.find((mm) => mm.aInput === input.name || mm.bInput === input.name)!;
    const want = ref.grads.get(m.path)![input.name === m.aInput ? 'a' : 'b'];
    const e = relErr(out[`d${i}`].data, want);
    worst = Math.max(worst, e);
    if (e > tol.tensorTol) errors.push(`d loss / d ${input.name}: relative error ${e.toExponential(2)}`);
  });
  return { loss: ref.loss, lossErr, worst, errors };
}

/** A float64 graph run beside its float64 reference: loss, logits and every trainable input's gradient. */
export interface ReferenceRun {
  readonly model: ModelGraph;
  readonly loss: number;
  readonly logits: number[];
  /** d loss / d trainable input, by input name. */
  readonly grads: Map<string, number[]>;
  readonly ref: ReferenceOutput;
}

/**
 * Runs `model` (built in float64) on `weights` and seeded rank-`lora.r` factors, and `reference` on the
 * same factors (by module path): what the families' small-width tests compare.
 */
export async function runBesideReference(
  model: ModelGraph,
  weights: ReadonlyMap<string, Float64Array>,
  lora: LoraSettings,
  data: { ids: number[][]; mask: number[][]; labels: number[][] },
  reference: (factors: ReadonlyMap<string, { a: Float64Array; b: Float64Array }>) => ReferenceOutput,
): Promise<ReferenceRun> {
  const factors = randomFactors(model, lora.r, 50);
  const feeds = modelFeeds(model, { values: new Map([...weights, ...factors.byInput]), ...data });
  const ds = grad(model.loss, model.trainable);
  const out = await runGraph(model.graph, feeds, { loss: model.loss, logits: model.logits, ...Object.fromEntries(ds.map((dv, i) => [`d${i}`, dv])) });
  const grads = new Map(model.trainable.map((t, i) => [t.name, out[`d${i}`].data]));
  return { model, loss: out.loss.data[0], logits: out.logits.data, grads, ref: reference(factors.byPath) };
}

/** Loss, logits and every LoRA gradient of the graph against the reference, within `tol`. */
export function assertMatchesReference(run: ReferenceRun, tol: { rtol: number; atol: number }): void {
  assertClose([run.loss], [run.ref.loss], tol.rtol, tol.atol, 'loss');
  assertClose(run.logits, run.ref.logits, tol.rtol, tol.atol, 'logits');
  for (const m of run.model.modules) {
    const g = run.ref.grads.get(m.path)!;
    assertClose(run.grads.get(m.aInput)!, g.a, tol.rtol, tol.atol, `d loss / d ${m.aInput}`);
    assertClose(run.grads.get(m.bInput)!, g.b, tol.rtol, tol.atol, `d loss / d ${m.bInput}`);
  }
}
