/**
 * Test helpers for src/graph: run emitted graphs in onnxruntime, and check analytical gradients
 * against central finite differences of the same graph's loss.
 */
import assert from 'node:assert/strict';
import { GraphBuilder, type Value } from '../../src/graph/builder.js';
import { grad } from '../../src/graph/autodiff.js';
import { toOnnxBytes } from '../../src/graph/emit.js';
import { mul } from '../../src/graph/ops/mul.js';
import { reduceSum } from '../../src/graph/ops/reduceSum.js';
import ort from 'onnxruntime-node';
import { createSession, ortTensor, runSession, type OrtTensor } from '../../src/runtime/session.js';

export type Data = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint32Array | Uint8Array;

/** Deterministic uniform numbers in [lo, hi) (mulberry32). */
export function random(n: number, seed: number, lo = -1, hi = 1): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  });
}

/** Random float data of a value's dtype. */
export function randomData(v: Value, dims: readonly number[], seed: number, lo = -1, hi = 1): Float32Array | Float64Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const values = random(n, seed, lo, hi);
  return v.dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
}

/**
 * An onnxruntime tensor for a feed, wrapped by the runtime's `ortTensor` as the trainer's feeds are;
 * a bool feed (the graph tests' masks; the models take int64 masks) straight through onnxruntime.
 */
export function toTensor(data: Data, dims: readonly number[]): OrtTensor {
  if (data instanceof Float32Array) return ortTensor('float32', data, dims);
  if (data instanceof Float64Array) return ortTensor('float64', data, dims);
  if (data instanceof BigInt64Array) return ortTensor('int64', data, dims);
  if (data instanceof Int32Array) return ortTensor('int32', data, dims);
  if (data instanceof Uint32Array) return ortTensor('uint32', data, dims);
  return new ort.Tensor('bool', data, dims);
}

export interface Feed {
  readonly value: Value;
  readonly data: Data;
  readonly dims: readonly number[];
}

/** Emits `outputs` and runs them once; returns each output's data as numbers and its dims. */
export async function runGraph(g: GraphBuilder, feeds: readonly Feed[], outputs: Record<string, Value>): Promise<Record<string, { data: number[]; dims: readonly number[] }>> {
  const session = await createSession(toOnnxBytes(g, { outputs, inputs: feeds.map((f) => f.value) }), { intraOpThreads: 1 });
  const result = await runSession(session, Object.fromEntries(feeds.map((f) => [f.value.name, toTensor(f.data, f.dims)])));
  return Object.fromEntries(Object.entries(result).map(([k, t]) => [k, { data: Array.from(t.data as ArrayLike<number>, Number), dims: t.dims }]));
}

export interface GradCheckOptions {
  /** Finite-difference step. */
  eps: number;
  /** Pass when |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|). */
  rtol: number;
  atol: number;
  /** Check at most this many coordinates per parameter (evenly spread); default all. */
  maxCoords?: number;
}

/** Float64 graphs: eps 1e-6, rtol 1e-5, atol 1e-8. */
export const F64: GradCheckOptions = { eps: 1e-6, rtol: 1e-5, atol: 1e-8 };
/** Float32 graphs: eps 1e-2, rtol 2e-2, atol 2e-3 (float32 round-off in the loss dominates). */
export const F32: GradCheckOptions = { eps: 1e-2, rtol: 2e-2, atol: 2e-3 };

/**
 * Checks d loss / d params for `loss = Σ out ⊙ R` (R a fixed random cotangent, or loss = out when
 * out is a scalar) against central differences `(L(x+ε) − L(x−ε)) / 2ε`, coordinate by
 * coordinate. `params` are feeds whose gradient is checked; other feeds are held fixed.
 * Returns the analytical gradients.
 */
export async function gradCheck(g: GraphBuilder, out: Value, feeds: readonly Feed[], params: readonly Value[], options: GradCheckOptions): Promise<number[][]> {
  let loss = out;
  const allFeeds = [...feeds];
  if (out.rank > 0) {
    const forward = await runGraph(g, feeds, { out });
    const dims = forward.out.dims;
    const cot = g.input(`cotangent_${g.nodes.length}`, out.dtype, out.shape);
    allFeeds.push({ value: cot, data: randomData(out, dims, 99, 0.5, 1.5), dims });
    loss = reduceSum(mul(out, cot));
  }
  const grads = grad(loss, params);
  const inputs = allFeeds.map((f) => f.value);
  const outputs: Record<string, Value> = { loss };
  grads.forEach((d, i) => {
    outputs[`d${i}`] = d;
  });
  const full = await createSession(toOnnxBytes(g, { outputs, inputs }), { intraOpThreads: 1 });
  const lossOnly = await createSession(toOnnxBytes(g, { outputs: { loss }, inputs }), { intraOpThreads: 1 });
  const feedMap = (override?: Feed): Record<string, OrtTensor> => Object.fromEntries(allFeeds.map((f) => [f.value.name, toTensor(override !== undefined && override.value === f.value ? override.data : f.data, f.dims)]));
  const analytic = await runSession(full, feedMap());
  const results: number[][] = [];
  for (let p = 0; p < params.length; p++) {
    const feed = allFeeds.find((f) => f.value === params[p]);
    assert.ok(feed !== undefined, `gradCheck: no feed for parameter ${params[p].name}`);
    const a = Array.from(analytic[`d${p}`].data as ArrayLike<number>, Number);
    results.push(a);
    assert.deepEqual(analytic[`d${p}`].dims, feed.dims, `gradient of ${params[p].name} has dims ${analytic[`d${p}`].dims.join('x')}`);
    const n = feed.data.length;
    const count = Math.min(n, options.maxCoords ?? n);
    for (let k = 0; k < count; k++) {
      const c = Math.floor((k * n) / count);
      const evalAt = async (delta: number): Promise<number> => {
        const data = (feed.data as Float32Array | Float64Array).slice();
        data[c] += delta;
        const r = await runSession(lossOnly, feedMap({ ...feed, data }));
        return Number((r.loss.data as ArrayLike<number>)[0]);
      };
      const numeric = (await evalAt(options.eps) - await evalAt(-options.eps)) / (2 * options.eps);
      const tol = options.atol + options.rtol * Math.max(Math.abs(a[c]), Math.abs(numeric));
      assert.ok(Math.abs(a[c] - numeric) <= tol, `d loss / d ${params[p].name}[${c}]: analytic ${a[c]}, finite difference ${numeric} (tolerance ${tol.toExponential(2)})`);
    }
  }
  return results;
}

/** Asserts two arrays agree elementwise within atol + rtol·|expected|. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length}, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const tol = atol + rtol * Math.abs(expected[i]);
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tolerance ${tol.toExponential(2)})`);
  }
}

/** erf by its Taylor series, for references in float64 (|x| < 3: the series has converged long before its 80 terms). */
export function erfRef(x: number): number {
  let sum = 0;
  let term = x;
  for (let n = 0; n < 80; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export interface UnaryCheck {
  readonly dtype: 'float32' | 'float64';
  readonly dims: readonly number[];
  /** The seed and range of the random input (randomData). */
  readonly seed: number;
  readonly range: readonly [lo: number, hi: number];
  /** The op elementwise, in float64. */
  readonly ref: (x: number) => number;
  /** assertClose's tolerances for the forward pass. */
  readonly rtol: number;
  readonly atol: number;
  readonly what: string;
}

/**
 * A one-input op on a random input `x`: its output matches `ref` element by element, and its gradient passes gradCheck
 * (F64 for float64, F32 for float32).
 */
export async function checkUnary(op: (x: Value) => Value, c: UnaryCheck): Promise<void> {
  const g = new GraphBuilder();
  const x = g.input('x', c.dtype, c.dims);
  const y = op(x);
  const data = randomData(x, c.dims, c.seed, c.range[0], c.range[1]);
  const feeds = [{ value: x, data, dims: c.dims }];
  const out = await runGraph(g, feeds, { y });
  assertClose(out.y.data, Array.from(data, c.ref), c.rtol, c.atol, c.what);
  await gradCheck(g, y, feeds, [x], c.dtype === 'float64' ? F64 : F32);
}
