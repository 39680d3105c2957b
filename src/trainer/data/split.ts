/**
 * Splitting a dataset across federated clients (IID and non-IID by group) and into train/eval.
 * Every split is a partition: each item lands in exactly one part, and each part keeps the items
 * in their original order (shuffling is the batch iterator's job).
 */
import { createRng } from '../../core/random.js';
import { deriveSeed, permutation, sampleDirichlet, shuffleInPlace } from './sampling.js';

/** Options of {@link splitIid}. */
export interface IidOptions {
  readonly seed: number;
}

/** Options of {@link splitNonIid}. */
export interface NonIidOptions<T> {
  readonly seed: number;
  /**
   * Dirichlet concentration. When given, each group's items are shared across the k clients in
   * proportions drawn from Dirichlet(alpha, …, alpha): small alpha (0.1) → each group sits on one
   * or two clients; large alpha (100) → close to IID. A draw that leaves a client with fewer than
   * `minPerClient` items is redrawn, whole, as Flower Datasets' DirichletPartitioner does (see
   * {@link splitDirichlet}).
   */
  readonly alpha?: number;
  /** With alpha: the fewest items a client may get (default 1: no client is left empty). */
  readonly minPerClient?: number;
  /**
   * Without alpha: the share of each group's items that goes to the client(s) it dominates; the
   * rest is dealt evenly to the other clients. Default 0.8; 1 gives each client its groups only.
   */
  readonly dominance?: number;
  /** The group of an item (default: its `group` field). */
  readonly groupOf?: (item: T) => string;
}

/** Deals items to k clients uniformly at random, sizes within one of each other. */
export function splitIid<T>(items: readonly T[], k: number, options: IidOptions): T[][] {
  checkK(k, 'splitIid');
  const owner = new Int32Array(items.length);
  permutation(items.length, deriveSeed(options.seed, 'iid')).forEach((item, position) => {
    owner[item] = position % k;
  });
  return collect(items, owner, k);
}

/**
 * Deals items to k clients by group. Groups are taken in sorted order; without `alpha`, group j is
 * dominated by the clients c with c mod G = j when k ≥ G groups (several clients may share a
 * group), or by client j mod k when k < G (a client may dominate several groups): a share
 * `dominance` of the group's items (rounded) goes to its dominant clients, the rest evenly to the
 * others. With `alpha`, see {@link NonIidOptions.alpha}. Counts are exact, not sampled: a group of
 * n items gives round(dominance·n) to its dominant clients.
 */
export function splitNonIid<T>(items: readonly T[], k: number, options: NonIidOptions<T>): T[][] {
  checkK(k, 'splitNonIid');
  if (options.alpha !== undefined) {
    const { alpha, seed, minPerClient, groupOf } = options;
    if (!(alpha > 0 && Number.isFinite(alpha))) throw new RangeError(`splitNonIid: alpha must be a positive number, got ${alpha}`);
    return splitDirichlet(items, k, { seed, alpha, ...(minPerClient !== undefined ? { minPerClient } : {}), ...(groupOf !== undefined ? { groupOf } : {}) }).parts;
  }
  const groupOf = options.groupOf ?? defaultGroup;
  const { byGroup, groups } = indexByGroup(items, groupOf);
  const owner = new Int32Array(items.length);
  const dominance = options.dominance ?? 0.8;
  if (!(dominance >= 0 && dominance <= 1)) throw new RangeError(`splitNonIid: dominance must be in [0, 1], got ${dominance}`);

  groups.forEach((group, j) => {
    const members = shuffleInPlace(byGroup.get(group)!.slice(), createRng(deriveSeed(options.seed, 'non-iid', group)));
    const owners = Array.from({ length: k }, (_, c) => c).filter((c) => (k >= groups.length ? c % groups.length === j : c === j % k));
    const others = Array.from({ length: k }, (_, c) => c).filter((c) => !owners.includes(c));
    const nOwn = others.length === 0 ? members.length : Math.round(dominance * members.length);
    members.forEach((i, pos) => {
      owner[i] = pos < nOwn ? owners[(pos + j) % owners.length] : others[(pos - nOwn + j) % others.length];
    });
  });
  return collect(items, owner, k);
}

/** Options of {@link splitDirichlet}. */
export interface DirichletOptions<T> {
  readonly seed: number;
  /** Concentration α > 0 of the symmetric Dirichlet over the clients. */
  readonly alpha: number;
  /** The fewest items a client may get (default 1: no client is left empty). */
  readonly minPerClient?: number;
  /** Whole draws tried before giving up (default 100). */
  readonly maxDraws?: number;
  /** The group of an item (default: its `group` field, else `label:<n>`). */
  readonly groupOf?: (item: T) => string;
}

/** A Dirichlet split, and how many whole draws it took (1: the first draw left no client short). */
export interface DirichletSplit<T> {
  readonly parts: T[][];
  readonly draws: number;
}

const DEFAULT_MAX_DRAWS = 100;

/**
 * Group (label) skew by a Dirichlet draw, like Flower Datasets' DirichletPartitioner: for each
 * group, in sorted order, proportions p ~ Dirichlet(α, …, α) over the k clients, and the group's
 * items (shuffled by seed) dealt in counts proportional to p (largest remainder, so they sum to the
 * group's size exactly). Small α puts each group on one or two clients, large α is close to IID.
 *
 * No client is left short: a draw that gives some client fewer than `minPerClient` items (default 1)
 * is discarded and the whole draw, every group, repeated from the next derived seed — so the split is
 * the Dirichlet split conditioned on every client getting at least that many items. After `maxDraws`
 * draws (default 100) a RangeError names the sizes; raise α, use fewer clients or more data.
 * Deterministic per seed; the first draw is the same as before the retry existed.
 */
export function splitDirichlet<T>(items: readonly T[], k: number, options: DirichletOptions<T>): DirichletSplit<T> {
  checkK(k, 'splitDirichlet');
  const { alpha, seed } = options;
  if (!(alpha > 0 && Number.isFinite(alpha))) throw new RangeError(`splitDirichlet: alpha must be a positive number, got ${alpha}`);
  const min = options.minPerClient ?? 1;
  if (!Number.isInteger(min) || min < 0) throw new RangeError(`splitDirichlet: minPerClient must be a non-negative integer, got ${min}`);
  if (min * k > items.length) throw new RangeError(`splitDirichlet: ${items.length} items cannot give each of ${k} clients at least ${min}`);
  const maxDraws = options.maxDraws ?? DEFAULT_MAX_DRAWS;
  if (!Number.isInteger(maxDraws) || maxDraws < 1) throw new RangeError(`splitDirichlet: maxDraws must be a positive integer, got ${maxDraws}`);
  const groupOf = options.groupOf ?? defaultGroup;
  const { byGroup, groups } = indexByGroup(items, groupOf);
  const members = new Map(groups.map((g) => [g, shuffleInPlace(byGroup.get(g)!.slice(), createRng(deriveSeed(seed, 'non-iid', g)))]));
  const owner = new Int32Array(items.length);
  let smallest = 0;
  for (let draw = 0; draw < maxDraws; draw++) {
    const sizes = new Array<number>(k).fill(0);
    for (const group of groups) {
      const list = members.get(group)!;
      const rng = createRng(draw === 0 ? deriveSeed(seed, 'dirichlet', group) : deriveSeed(seed, 'dirichlet', `draw ${draw}`, group));
      let start = 0;
      roundShares(sampleDirichlet(alpha, k, rng), list.length).forEach((n, client) => {
        for (const i of list.slice(start, start + n)) owner[i] = client;
        sizes[client] += n;
        start += n;
      });
    }
    smallest = Math.min(...sizes);
    if (smallest >= min) return { parts: collect(items, owner, k), draws: draw + 1 };
  }
  throw new RangeError(`splitDirichlet: ${maxDraws} Dirichlet(α = ${alpha}) draws of ${items.length} items in ${groups.length} group${groups.length === 1 ? '' : 's'} over ${k} clients `
    + `all left some client with fewer than ${min} item${min === 1 ? '' : 's'} (the last: ${smallest}); raise alpha, use fewer clients or more data`);
}

/** A seeded train/eval partition: `round(evalFraction·n)` items go to eval. */
export function splitTrainEval<T>(items: readonly T[], evalFraction: number, seed: number): { train: T[]; eval: T[] } {
  if (!(evalFraction >= 0 && evalFraction < 1)) throw new RangeError(`splitTrainEval: evalFraction must be in [0, 1), got ${evalFraction}`);
  const nEval = Math.round(evalFraction * items.length);
  const owner = new Int32Array(items.length);
  permutation(items.length, deriveSeed(seed, 'train-eval')).forEach((item, position) => {
    owner[item] = position < nEval ? 1 : 0;
  });
  const [train, evalPart] = collect(items, owner, 2);
  return { train, eval: evalPart };
}

/** Integer counts summing to n, proportional to shares (largest remainder, ties to the lower index). */
function roundShares(shares: readonly number[], n: number): number[] {
  const raw = shares.map((p) => p * n);
  const counts = raw.map(Math.floor);
  let left = n - counts.reduce((s, c) => s + c, 0);
  const order = raw.map((r, i) => ({ frac: r - Math.floor(r), i })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let t = 0; left > 0; t++, left--) counts[order[t % order.length].i]++;
  return counts;
}

function collect<T>(items: readonly T[], owner: Int32Array, k: number): T[][] {
  const parts: T[][] = Array.from({ length: k }, () => []);
  items.forEach((item, i) => parts[owner[i]].push(item));
  return parts;
}

function checkK(k: number, op: string): void {
  if (!Number.isInteger(k) || k <= 0) throw new RangeError(`${op}: the number of clients must be a positive integer, got ${k}`);
}

function defaultGroup(item: unknown): string {
  const group = (item as { group?: unknown } | null)?.group;
  if (typeof group === 'string') return group;
  const label = (item as { label?: unknown } | null)?.label;
  if (typeof label === 'number') return `label:${label}`;
  throw new Error('splitNonIid: an item has no string "group" (nor a numeric "label"); pass groupOf');
}

/** The items' indices by group (in item order) and the groups sorted. */
function indexByGroup<T>(items: readonly T[], groupOf: (item: T) => string): { byGroup: Map<string, number[]>; groups: string[] } {
  const byGroup = new Map<string, number[]>();
  items.forEach((item, i) => {
    const g = groupOf(item);
    const list = byGroup.get(g);
    if (list === undefined) byGroup.set(g, [i]);
    else list.push(i);
  });
  return { byGroup, groups: [...byGroup.keys()].sort() };
}
