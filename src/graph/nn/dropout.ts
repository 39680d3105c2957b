/**
 * Dropout in training mode, deterministic per seed. onnxruntime's RandomUniformLike cannot be
 * re-seeded per run, so the mask is a counter-based hash computed in the graph from an int64
 * `seed` input: the same seed gives the same mask in every session and on every machine, so a
 * step is reproducible (the trainer feeds e.g. `seed = hash(runSeed, step)`); the tests recompute
 * the mask in TypeScript (test/helpers/dropoutMask.ts).
 *
 * The hash works on int64 values below P = 2³¹−1, so every product stays below 2⁶² (no
 * overflow). To keep the full-size work small, x is seen as rows × cols (cols = last axis): row
 * and column indices are hashed separately (two rounds of h ← ((h² + c) mod P)·a mod P, on small
 * vectors), then each element mixes its row and column hashes with one more quadratic round:
 * `h = ((r + c)² + C) mod P`, kept when `h ≥ rate·P`.
 *
 * Providers without int64 kernels (onnxruntime's WebGPU) get the same mask from
 * {@link dropoutMaskUint32}: the same hash in uint32 arithmetic modulo P (mersenne.ts), which
 * src/graph/lower.ts puts in place of the int64 one when it narrows the seed.
 */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { add } from '../ops/add.js';
import { checkFloat } from '../ops/common.js';
import { div } from '../ops/div.js';
import { greaterOrEqual } from '../ops/logical.js';
import { mod } from '../ops/mod.js';
import { mul } from '../ops/mul.js';
import { range } from '../ops/range.js';
import { reshape } from '../ops/reshape.js';
import { squeeze } from '../ops/squeeze.js';
import { where } from '../ops/where.js';
import { cast } from '../ops/cast.js';
import { gather } from '../ops/gather.js';
import { divDims, numel, parseDim, type Dim } from '../shape.js';
import { addModP, modP, mulModP } from './mersenne.js';

const P = 2147483647;
const ROW_SEED = 1103515245;
const COL_SEED = 1664525;
const COL_SALT = 40503;
const ROUNDS: readonly (readonly [number, number])[] = [[1013904223, 48271], [2147483587, 69621]];
const FINAL = 1442695041;

export interface DropoutOptions {
  /** Probability of dropping an element, in [0, 1). */
  rate: number;
  /** int64 scalar input; a new value per step gives a new mask. */
  seed: Value;
  /** Distinguishes dropout sites that share a seed (default: derived from the node count, stable for a fixed model build). */
  salt?: number;
}

/** What a dropout mask was built from: enough to build it again in another form. */
export interface DropoutMaskSpec {
  /** The tensor the mask applies to (its shape). */
  readonly x: Value;
  /** The int64 seed input. */
  readonly seed: Value;
  readonly salt: number;
  readonly rate: number;
}

/** The keep-scale masks built by {@link dropout}, by value. */
const maskSpecs = new WeakMap<Value, DropoutMaskSpec>();

/** What built `v`, when `v` is the keep-scale mask of a dropout (`x · mask` is the dropout's output). */
export function dropoutMaskOf(v: Value): DropoutMaskSpec | undefined {
  return maskSpecs.get(v);
}

/**
 * Records that `mask` is the keep-scale mask `spec` describes: a pass that rebuilds a graph
 * (storeInputs.ts) carries the record over to its copy of a mask, so lowering can still find it.
 */
export function recordDropoutMask(mask: Value, spec: DropoutMaskSpec): void {
  check(mask.graph === spec.x.graph && mask.graph === spec.seed.graph, () => `recordDropoutMask: ${mask.name}, its x and its seed must belong to one graph`);
  maskSpecs.set(mask, spec);
}

/** Two hash rounds over int64 values in [0, P). */
function mix(h: Value): Value {
  let v = h;
  for (const [c, a] of ROUNDS) v = mod(mul(mod(add(mul(v, v), c), P), a), P);
  return v;
}

/** `x·mask/(1−rate)` with the mask from `hash(seed, salt, row, col)`; identity when rate is 0. */
export function dropout(x: Value, options: DropoutOptions): Value {
  checkFloat('dropout', 'x', x);
  const { rate, seed } = options;
  check(rate >= 0 && rate < 1, () => `dropout: rate ${rate} must be in [0, 1)`);
  check(seed.dtype === 'int64' && seed.rank === 0, () => `dropout: seed must be an int64 scalar, got ${seed.toString()}`);
  check(x.rank >= 1, () => `dropout: x ${x.toString()} must have at least one axis`);
  if (rate === 0) return x;
  const g = x.graph;
  const salt = options.salt ?? g.nodes.length % P;
  check(Number.isInteger(salt) && salt >= 0 && salt < P, () => `dropout: salt ${salt} must be an integer in [0, 2³¹−1)`);
  const last = x.shape[x.rank - 1];
  const cols = squeeze(g.dimsTensor([last], x), 0);
  const rowCount = divDims(numel(x.shape), last) ?? 1;
  const zero = g.scalar(0, 'int64');
  const one = g.scalar(1, 'int64');
  const s = mod(seed, P);
  const rowIds = range(zero, div(g.sizeOf(x), cols), one, rowCount);
  const rows = mix(mod(add(rowIds, mod(add(mul(s, ROW_SEED), salt), P)), P));
  const colIds = range(zero, cols, one, last);
  const colHash = mix(mod(add(colIds, mod(add(mul(s, COL_SEED), (salt * COL_SALT) % P + 1), P)), P));
  const rowHash = reshape(rows, [...x.shape.slice(0, -1), 1]);
  const h0 = mod(add(rowHash, colHash), P);
  const h = mod(add(mul(h0, h0), FINAL), P);
  const mask = where(greaterOrEqual(h, Math.floor(rate * P)), g.scalar(1 / (1 - rate), x.dtype), 0);
  maskSpecs.set(mask, { x, seed, salt, rate });
  return mul(x, mask);
}

/**
 * Run-time sizes of some symbolic dimensions, for {@link dropoutMaskUint32}: a uint32 `[n]` value
 * holding the sizes of `symbols`, in order.
 */
export interface SymbolValues {
  readonly values: Value;
  readonly symbols: readonly string[];
}

/**
 * The keep-scale mask of `spec` (shaped like `x`, in x's graph) from a uint32 `seed` holding the
 * same value as the int64 one (below 2³², as the trainer derives seeds): {@link dropout}'s hash, every
 * step in uint32 modulo P, so the mask is the same bit for bit.
 *
 * The hash numbers x's rows (all axes but the last) in row-major order. With `sizes`, the row
 * number of an element is computed from those sizes of the symbolic dims instead of x's own: a batch
 * padded to a fixed shape then gets, on its real elements, the mask its unpadded self gets from
 * {@link dropout} (the row number of element (b, t, …) of a [batch, seq, …] tensor depends on seq).
 */
export function dropoutMaskUint32(x: Value, seed: Value, spec: Pick<DropoutMaskSpec, 'salt' | 'rate'>, sizes?: SymbolValues): Value {
  check(seed.dtype === 'uint32' && seed.rank === 0, () => `dropoutMaskUint32: seed must be a uint32 scalar, got ${seed.toString()}`);
  check(x.rank >= 1, () => `dropoutMaskUint32: x ${x.toString()} must have at least one axis`);
  check(sizes === undefined || (sizes.values.dtype === 'uint32' && sizes.values.rank === 1), () => `dropoutMaskUint32: sizes must be a uint32 vector, got ${sizes?.values.toString() ?? ''}`);
  const { salt, rate } = spec;
  const g = x.graph;
  const k = x.rank - 1;
  const last = x.shape[k];
  /** Indices 0…n−1 of a dimension as uint32 (a Range over the graph's own size: a constant once shapes are fixed). */
  const iota = (d: Dim): Value => cast(range(g.scalar(0, 'int64'), squeeze(g.dimsTensor([d], x), 0), g.scalar(1, 'int64'), d), 'uint32');
  /** A dimension's size as a uint32 scalar: from `sizes` for the symbols it names, else the graph's. */
  const size = (d: Dim): Value => {
    const { coef, syms } = parseDim(d);
    let acc: Value = g.scalar(coef, 'uint32');
    for (const sym of syms) {
      const at = sizes?.symbols.indexOf(sym) ?? -1;
      acc = mul(acc, at >= 0 ? squeeze(gather(sizes!.values, g.constant(BigInt64Array.of(BigInt(at)), [1], 'at')), 0) : cast(squeeze(g.dimsTensor([sym], x), 0), 'uint32'));
    }
    return acc;
  };
  // Row number Σ iⱼ·strideⱼ over the leading axes, shaped [d₀, …, d_{k−1}, 1].
  let rowIds: Value = g.scalar(0, 'uint32');
  let stride: Value = g.scalar(1, 'uint32');
  for (let j = k - 1; j >= 0; j--) {
    const axisShape = x.shape.map((d, i) => (i === j ? d : 1));
    rowIds = add(rowIds, mul(reshape(iota(x.shape[j]), axisShape), stride));
    if (j > 0) stride = mul(stride, size(x.shape[j]));
  }
  if (k === 0) rowIds = reshape(rowIds, [1]);
  const mix32 = (h: Value): Value => {
    let v = h;
    for (const [c, a] of ROUNDS) v = mulModP(addModP(mulModP(v, v), c), a);
    return v;
  };
  const s = modP(seed);
  const rowHash = mix32(addModP(modP(rowIds), addModP(mulModP(s, ROW_SEED), salt)));
  const colHash = mix32(addModP(iota(last), addModP(mulModP(s, COL_SEED), ((salt * COL_SALT) % P + 1) % P)));
  const h0 = addModP(rowHash, colHash);
  const h = addModP(mulModP(h0, h0), FINAL);
  return where(greaterOrEqual(h, Math.floor(rate * P)), g.scalar(1 / (1 - rate), x.dtype), 0);
}
