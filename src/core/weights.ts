/**
 * Client weights w_i ≥ 0 with Σ w_i = 1: uniform (the paper's default), by number of training
 * examples, or explicit (normalised here). Negative, NaN, infinite and all-zero weights are refused
 * with an error naming the offending client.
 */

/** How clients are weighted in an average. */
export type WeightingMode = 'uniform' | 'examples' | 'explicit';
export const WEIGHTING_MODES: readonly WeightingMode[] = ['uniform', 'examples', 'explicit'];

/** What a client contributes to its own weight. */
export interface WeightSource {
  /** Training examples seen this round (for `examples`). */
  readonly numExamples?: number;
  /** A raw, unnormalised weight (for `explicit`). */
  readonly weight?: number;
}

/** Equal weights 1/k for k clients. */
export function uniformWeights(k: number): Float64Array {
  if (!Number.isInteger(k) || k <= 0) throw new RangeError(`uniformWeights: need a positive number of clients, got ${k}`);
  return new Float64Array(k).fill(1 / k);
}

/**
 * Normalises raw weights to sum to 1. Throws when the list is empty, when a weight is negative or
 * not finite (naming its index), or when all weights are zero.
 */
export function normalizeWeights(raw: ArrayLike<number>, what = 'weights'): Float64Array {
  if (raw.length === 0) throw new RangeError(`${what}: no clients to weight`);
  let total = 0;
  for (let i = 0; i < raw.length; i++) {
    const w = raw[i];
    if (!Number.isFinite(w)) throw new RangeError(`${what}: client ${i} has a non-finite weight ${w}`);
    if (w < 0) throw new RangeError(`${what}: client ${i} has a negative weight ${w}`);
    total += w;
  }
  if (total === 0) throw new RangeError(`${what}: all ${raw.length} weights are zero`);
  if (!Number.isFinite(total)) throw new RangeError(`${what}: the weights sum to ${total}`);
  const out = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw[i] / total;
  return out;
}

/** Weights proportional to example counts (non-negative integers, not all zero). */
export function exampleWeights(counts: ArrayLike<number>): Float64Array {
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (!Number.isInteger(c) || c < 0) throw new RangeError(`example weights: client ${i} reports ${c} examples (need a non-negative integer)`);
  }
  return normalizeWeights(counts, 'example weights');
}

/** Resolves the weights of `clients` under a weighting mode; the result sums to 1. */
export function resolveWeights(mode: WeightingMode, clients: readonly WeightSource[]): Float64Array {
  switch (mode) {
    case 'uniform':
      return uniformWeights(clients.length);
    case 'examples':
      return exampleWeights(
        clients.map((c, i) => {
          if (c.numExamples === undefined) throw new RangeError(`example weights: client ${i} did not report numExamples`);
          return c.numExamples;
        }),
      );
    case 'explicit':
      return normalizeWeights(
        clients.map((c, i) => {
          if (c.weight === undefined) throw new RangeError(`explicit weights: client ${i} has no weight`);
          return c.weight;
        }),
        'explicit weights',
      );
    default:
      throw new RangeError(`resolveWeights: unknown weighting mode '${String(mode)}' (expected ${WEIGHTING_MODES.join(', ')})`);
  }
}
