/**
 * Seeded sampling helpers for the data pipeline, on top of src/core/random.ts: seed derivation,
 * Fisher–Yates shuffles, Gamma and Dirichlet draws, and a stable string hash.
 */
import { createRng } from '../../core/random.js';
import type { Rng } from '../../core/random.js';

/** 32-bit FNV-1a hash of a string's UTF-16 code units (stable across runs and platforms). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A new 32-bit seed from a seed and labels (`deriveSeed(7, 'arith', 'train')`), so that independent
 * streams (splits, epochs, clients) do not share random numbers.
 */
export function deriveSeed(seed: number, ...parts: ReadonlyArray<string | number>): number {
  if (!Number.isFinite(seed)) throw new RangeError(`deriveSeed: seed must be a finite number, got ${seed}`);
  let h = fnv1a(`${Math.trunc(seed)}`);
  for (const part of parts) h = fnv1a(`${h}/${part}`);
  return h;
}

/** Shuffles `items` in place (Fisher–Yates) and returns it. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
  return items;
}

/** A seeded permutation of 0..n-1. */
export function permutation(n: number, seed: number): number[] {
  return shuffleInPlace(Array.from({ length: n }, (_, i) => i), createRng(seed));
}

/** One Gamma(shape, 1) sample (Marsaglia–Tsang; shape < 1 through the u^(1/shape) boost). */
export function sampleGamma(shape: number, rng: Rng): number {
  if (!(shape > 0) || !Number.isFinite(shape)) throw new RangeError(`sampleGamma: shape must be a positive number, got ${shape}`);
  if (shape < 1) {
    const u = 1 - rng.next(); // in (0, 1]
    return sampleGamma(shape + 1, rng) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.gaussian();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** Proportions p ~ Dirichlet(alpha, …, alpha) over k parts (non-negative, summing to 1). */
export function sampleDirichlet(alpha: number, k: number, rng: Rng): number[] {
  if (!Number.isInteger(k) || k <= 0) throw new RangeError(`sampleDirichlet: k must be a positive integer, got ${k}`);
  const g = Array.from({ length: k }, () => sampleGamma(alpha, rng));
  const sum = g.reduce((s, x) => s + x, 0);
  // With a tiny alpha every draw may underflow to 0: the limit is all mass on one part.
  if (!(sum > 0)) {
    const p = new Array<number>(k).fill(0);
    p[rng.int(k)] = 1;
    return p;
  }
  return g.map((x) => x / sum);
}
