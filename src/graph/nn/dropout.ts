/**
 * Dropout in training mode, deterministic per seed. onnxruntime's RandomUniformLike cannot be
 * re-seeded per run, so the mask is a counter-based hash computed in the graph from an int64
 * `seed` input: element i of the tensor keeps its value when `hash(seed, salt, i) ≥ rate·P`.
 * The same seed gives the same mask in every session and on every machine, so a training step
 * is reproducible (the trainer feeds e.g. `seed = hash(runSeed, step)`), and
 * {@link dropoutKeepMask} recomputes the mask in TypeScript for tests.
 *
 * The hash works on int64 values below P = 2³¹−1, so every product stays below 2⁶² (no
 * overflow): h₀ = (i + (seed·K + salt) mod P) mod P, then three rounds of
 * h = (h² + Cₖ) mod P, h = (h·Aₖ) mod P.
 */
import type { Value } from '../builder.js';
import { check } from '../errors.js';
import { add } from '../ops/add.js';
import { cast } from '../ops/cast.js';
import { checkFloat } from '../ops/common.js';
import { greaterOrEqual } from '../ops/logical.js';
import { mod } from '../ops/mod.js';
import { mul } from '../ops/mul.js';
import { range } from '../ops/range.js';
import { reshapeAs } from '../ops/reshape.js';
import { numel } from '../shape.js';

const P = 2147483647;
const SEED_MULTIPLIER = 1103515245;
const ROUNDS: readonly (readonly [number, number])[] = [[1013904223, 48271], [1664525, 69621], [2147483587, 40692]];

export interface DropoutOptions {
  /** Probability of dropping an element, in [0, 1). */
  rate: number;
  /** int64 scalar input; a new value per step gives a new mask. */
  seed: Value;
  /** Distinguishes dropout sites that share a seed (default: derived from the node count, stable for a fixed model build). */
  salt?: number;
}

/** `x·mask/(1−rate)` with the mask from `hash(seed, salt, i)`; identity when rate is 0. */
export function dropout(x: Value, options: DropoutOptions): Value {
  checkFloat('dropout', 'x', x);
  const { rate, seed } = options;
  check(rate >= 0 && rate < 1, () => `dropout: rate ${rate} must be in [0, 1)`);
  check(seed.dtype === 'int64' && seed.rank === 0, () => `dropout: seed must be an int64 scalar, got ${seed.toString()}`);
  if (rate === 0) return x;
  const g = x.graph;
  const salt = options.salt ?? g.nodes.length % P;
  check(Number.isInteger(salt) && salt >= 0 && salt < P, () => `dropout: salt ${salt} must be an integer in [0, 2³¹−1)`);
  const counter = range(g.scalar(0, 'int64'), g.sizeOf(x), g.scalar(1, 'int64'), numel(x.shape));
  const offset = mod(add(mul(mod(seed, P), SEED_MULTIPLIER), salt), P);
  let h = mod(add(counter, offset), P);
  for (const [c, a] of ROUNDS) h = mod(mul(mod(add(mul(h, h), c), P), a), P);
  const keep = reshapeAs(greaterOrEqual(h, Math.floor(rate * P)), x);
  return mul(x, mul(cast(keep, x.dtype), 1 / (1 - rate)));
}

/** The keep mask (1 = kept) that {@link dropout} uses for `n` elements, computed in TypeScript. */
export function dropoutKeepMask(seed: bigint, salt: number, n: number, rate: number): Uint8Array {
  const p = BigInt(P);
  const m = (v: bigint): bigint => ((v % p) + p) % p;
  const offset = m(m(seed) * BigInt(SEED_MULTIPLIER) + BigInt(salt));
  const threshold = BigInt(Math.floor(rate * P));
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let h = m(BigInt(i) + offset);
    for (const [c, a] of ROUNDS) h = m(m(h * h + BigInt(c)) * BigInt(a));
    out[i] = h >= threshold ? 1 : 0;
  }
  return out;
}
