/**
 * Seeded pseudo-random numbers for tests, synthetic data and adapter initialisation: mulberry32
 * (32-bit state, period 2^32, good enough for everything here that is not cryptography), Gaussian
 * samples by Box–Muller, PEFT-like Kaiming-uniform init, and seeded sampling without replacement.
 */
import type { Matrix } from './tensor.js';

/** A seeded generator of uniform numbers in [0, 1) with helpers built on it. */
export interface Rng {
  /** Uniform in [0, 1), 32 bits of randomness. */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal sample (Box–Muller; the second value of each pair is kept for the next call). */
  gaussian(): number;
}

/** The mulberry32 step: returns a function giving uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Creates a seeded generator. The same seed always gives the same sequence. */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new RangeError(`createRng: seed must be a finite number, got ${seed}`);
  const next = mulberry32(Math.trunc(seed));
  let spare: number | null = null;
  return {
    next,
    int(n: number): number {
      if (!Number.isInteger(n) || n <= 0) throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
      return Math.floor(next() * n);
    },
    uniform(lo: number, hi: number): number {
      return lo + (hi - lo) * next();
    },
    gaussian(): number {
      if (spare !== null) {
        const g = spare;
        spare = null;
        return g;
      }
      // 1 - next() lies in (0, 1], so the logarithm is finite.
      const u1 = 1 - next();
      const u2 = next();
      const radius = Math.sqrt(-2 * Math.log(u1));
      spare = radius * Math.sin(2 * Math.PI * u2);
      return radius * Math.cos(2 * Math.PI * u2);
    },
  };
}

/** Fills `out` with uniform values in [lo, hi) and returns it. */
export function fillUniform<T extends Float32Array | Float64Array>(out: T, rng: Rng, lo: number, hi: number): T {
  for (let i = 0; i < out.length; i++) out[i] = rng.uniform(lo, hi);
  return out;
}

/** Fills `out` with normal values of the given mean and standard deviation and returns it. */
export function fillGaussian<T extends Float32Array | Float64Array>(out: T, rng: Rng, std = 1, mean = 0): T {
  for (let i = 0; i < out.length; i++) out[i] = mean + std * rng.gaussian();
  return out;
}

/** A rows × cols float32 matrix of normal values (mean 0, standard deviation `std`). */
export function randomMatrix(rows: number, cols: number, rng: Rng, std = 1): Matrix<Float32Array> {
  return { shape: [rows, cols], data: fillGaussian(new Float32Array(rows * cols), rng, std) };
}

/**
 * PyTorch's `kaiming_uniform_(w, a)` for a rows × cols weight (fan_in = cols): uniform in ±bound
 * with bound = gain·√(3 / fan_in), gain = √(2 / (1 + a²)). PEFT initialises `lora_A` this way with
 * a = √5, which gives bound = 1/√in_features; `lora_B` starts at zero.
 */
export function kaimingUniform(rows: number, cols: number, rng: Rng, a = Math.sqrt(5)): Matrix<Float32Array> {
  if (!Number.isInteger(cols) || cols <= 0) throw new RangeError(`kaimingUniform: fan_in (cols) must be a positive integer, got ${cols}`);
  const gain = Math.sqrt(2 / (1 + a * a));
  const bound = gain * Math.sqrt(3 / cols);
  return { shape: [rows, cols], data: fillUniform(new Float32Array(rows * cols), rng, -bound, bound) };
}

/**
 * `count` distinct integers from [0, total), sorted ascending, chosen uniformly by a seeded
 * generator (Floyd's algorithm: O(count) memory, whatever `total` is).
 */
export function sampleWithoutReplacement(total: number, count: number, rng: Rng): number[] {
  if (!Number.isInteger(total) || total < 0) throw new RangeError(`sampleWithoutReplacement: total must be a non-negative integer, got ${total}`);
  if (!Number.isInteger(count) || count < 0 || count > total) {
    throw new RangeError(`sampleWithoutReplacement: count must be an integer in [0, ${total}], got ${count}`);
  }
  const chosen = new Set<number>();
  for (let j = total - count; j < total; j++) {
    const t = rng.int(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return [...chosen].sort((x, y) => x - y);
}
