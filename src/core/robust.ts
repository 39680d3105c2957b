/**
 * Robust aggregation rules (docs/math.md §1.2): the coordinate-wise median and trimmed mean of the
 * clients' values, and FedEx-LoRA's base update under such a rule,
 *
 *   Ā = rule_i(A_i),  B̄ = rule_i(B_i),  D = s·(rule_i(B_i A_i) − B̄Ā)   (out × in, `linear` orientation)
 *
 * so that W0 + D + s·B̄Ā = rule_i(W0 + s·B_i A_i) coordinate by coordinate: both rules commute with
 * adding the W0 every client shares and with multiplying by s > 0 (they only sort and average the
 * values). A robust rule is not linear, so D has no factored form: the clients' products are formed
 * row block by row block (k × rows × in float64 values alive at a time, never every client's dense
 * product at once), each coordinate is reduced across clients, and only D is kept.
 *
 * The rules are unweighted: every client counts once, whatever it reports.
 */
import { shapeString } from './tensor.js';
import type { Matrix } from './tensor.js';
import type { Layout, LoraFactors } from './lora.js';
import type { FactoredUpdate } from './residual.js';

/** The names of the rules (`--aggregation`). */
export type AggregationRuleName = 'mean' | 'median' | 'trimmed-mean';
export const AGGREGATION_RULE_NAMES: readonly AggregationRuleName[] = ['mean', 'median', 'trimmed-mean'];

/**
 * How a round combines its clients: `mean` (the weighted mean every strategy computes, the default),
 * or a robust, unweighted, coordinate-wise rule: `median`, or `trimmed-mean` dropping the ⌊β·k⌋
 * smallest and the ⌊β·k⌋ largest of the k values of each coordinate and averaging the rest.
 */
export type AggregationRule =
  | { readonly name: 'mean' }
  | { readonly name: 'median' }
  | { readonly name: 'trimmed-mean'; /** β ∈ [0, 0.5): the share of clients dropped at each end. */ readonly trim: number };

/** The trim of `--aggregation trimmed-mean` when none is given. */
export const DEFAULT_TRIM = 0.2;

/** Builds and checks a rule; `trim` only for `trimmed-mean` (default {@link DEFAULT_TRIM}). Throws naming the bad value. */
export function aggregationRule(name: string, trim?: number): AggregationRule {
  if (!(AGGREGATION_RULE_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(`aggregation rule must be one of ${AGGREGATION_RULE_NAMES.join(', ')}, got '${name}'`);
  }
  if (name !== 'trimmed-mean') {
    if (trim !== undefined) throw new RangeError(`a trim applies to the trimmed-mean rule only, not to ${name}`);
    return { name: name as 'mean' | 'median' };
  }
  const beta = trim ?? DEFAULT_TRIM;
  if (!(Number.isFinite(beta) && beta >= 0 && beta < 0.5)) {
    throw new RangeError(`trimmed-mean: trim must be in [0, 0.5) (the share of clients dropped at each end), got ${beta}`);
  }
  return { name: 'trimmed-mean', trim: beta };
}

/** Checks a rule given as data (a persisted plan, options); returns it. */
export function checkAggregationRule(rule: AggregationRule): AggregationRule {
  return aggregationRule(rule.name, rule.name === 'trimmed-mean' ? rule.trim : undefined);
}

/** True for `median` and `trimmed-mean` (false for `mean` and for no rule at all). */
export function isRobustRule(rule: AggregationRule | undefined): boolean {
  return rule !== undefined && rule.name !== 'mean';
}

/** `mean`, `median`, `trimmed-mean 0.2`: the rule as reports and events show it. */
export function ruleLabel(rule: AggregationRule | undefined): string {
  if (rule === undefined) return 'mean';
  return rule.name === 'trimmed-mean' ? `trimmed-mean ${rule.trim}` : rule.name;
}

/** Values a trimmed mean drops at each end of k: ⌊β·k⌋ (the tiny slack keeps 0.29·100 at 29). */
export function trimmedPerEnd(trim: number, k: number): number {
  return Math.floor(trim * k + 1e-9);
}

/**
 * Null when `rule` can aggregate k clients; otherwise why not: a trimmed mean whose β > 0 would drop
 * nobody at this k (it would silently be the plain mean). β = 0 is the plain unweighted mean on purpose.
 */
export function ruleProblem(rule: AggregationRule, k: number): string | null {
  if (rule.name !== 'trimmed-mean' || rule.trim === 0 || trimmedPerEnd(rule.trim, k) >= 1) return null;
  const needed = Math.ceil(1 / rule.trim - 1e-9);
  // The smallest trim that drops one of k clients is 1/k (rounded up to 3 decimals), possible from k = 3 on.
  const least = Math.ceil(1000 / k) / 1000;
  return `trimmed-mean with trim ${rule.trim} drops ⌊${rule.trim}·${k}⌋ = 0 of ${k} clients at each end (it would be the plain mean): `
    + `it needs at least ${needed} clients${least < 0.5 ? `, or a trim of at least ${least} for ${k}` : ''}`;
}

/** True when the rule reduces k values to their plain mean (a median of at most 2, a trimmed mean dropping nobody). */
export function ruleIsMean(rule: AggregationRule, k: number): boolean {
  switch (rule.name) {
    case 'mean':
      return true;
    case 'median':
      return k <= 2;
    case 'trimmed-mean':
      return trimmedPerEnd(rule.trim, k) === 0;
  }
}

/** Sorts v[0..k) ascending in place (insertion sort for the usual handful of clients). */
function sortPrefix(v: Float64Array, k: number): void {
  if (k > 24) {
    v.subarray(0, k).sort();
    return;
  }
  for (let i = 1; i < k; i++) {
    const x = v[i];
    let j = i - 1;
    while (j >= 0 && v[j] > x) {
      v[j + 1] = v[j];
      j--;
    }
    v[j + 1] = x;
  }
}

/**
 * Reduces v[0..k) by the rule (reorders it). `drop` is ⌊β·k⌋ for a trimmed mean. The sum runs over
 * the sorted values, so the result does not depend on the order of the clients.
 */
function reduce(v: Float64Array, k: number, rule: AggregationRule, drop: number): number {
  sortPrefix(v, k);
  if (rule.name === 'median') return k % 2 === 1 ? v[(k - 1) >> 1] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
  const lo = rule.name === 'trimmed-mean' ? drop : 0;
  let s = 0;
  for (let i = lo; i < k - lo; i++) s += v[i];
  return s / (k - 2 * lo);
}

/** rule_i(M_i) coordinate by coordinate over same-shaped matrices, in float64, rounded to float32 once. */
export function robustCombine(mats: readonly Matrix[], rule: AggregationRule, what = 'robustCombine'): Matrix<Float32Array> {
  const k = mats.length;
  if (k === 0) throw new RangeError(`${what}: no matrices to combine`);
  const [rows, cols] = mats[0].shape;
  mats.forEach((m, i) => {
    if (m.shape[0] !== rows || m.shape[1] !== cols) throw new RangeError(`${what}: matrix ${i} has shape ${shapeString(m.shape)}, matrix 0 has ${shapeString(mats[0].shape)}`);
  });
  const drop = rule.name === 'trimmed-mean' ? trimmedPerEnd(rule.trim, k) : 0;
  const v = new Float64Array(k);
  const out = new Float32Array(rows * cols);
  for (let x = 0; x < out.length; x++) {
    for (let i = 0; i < k; i++) v[i] = mats[i].data[x];
    out[x] = reduce(v, k, rule, drop);
  }
  return { shape: [rows, cols], data: out };
}

/** What {@link robustResidual} computes for one module. */
export interface RobustResidual {
  /** D = s·(rule_i(B_i A_i) − B̄Ā), out × in in `linear` orientation, float32; null when not kept. */
  readonly d: Matrix<Float32Array> | null;
  /** ‖D‖_F: what the factor-wise rule (Ā, B̄ alone) misses of the rule's aggregate (float64, before rounding D). */
  readonly deviationNorm: number;
  /** ‖s·rule_i(B_i A_i)‖_F: the rule's aggregate update. */
  readonly idealUpdateNorm: number;
  /** True when every entry of D is exactly zero (a single client, identical clients). */
  readonly zero: boolean;
}

/** Float64 values of the clients' products held at once (k × rows × in); 2^20 is 8 MiB. */
const BLOCK_VALUES = 1 << 20;

/**
 * D = s·(rule_i(B_i A_i) − B̄Ā) for one module, with `global` = (Ā, B̄) as sent (float32), computed
 * row block by row block in float64: peak memory k × rows × in values (`blockValues` in all) plus D
 * itself when `keep` (default true; false: the norms only).
 */
export function robustResidual(
  clients: readonly LoraFactors[],
  global: LoraFactors,
  scale: number,
  rule: AggregationRule,
  options: { readonly keep?: boolean; readonly blockValues?: number } = {},
): RobustResidual {
  const k = clients.length;
  if (k === 0) throw new RangeError('robustResidual: no clients');
  const [r, inF] = global.a.shape;
  const out = global.b.shape[0];
  if (global.b.shape[1] !== r) throw new RangeError(`robustResidual: B̄ is ${shapeString(global.b.shape)} and Ā is ${shapeString(global.a.shape)}`);
  clients.forEach((c, i) => {
    if (c.a.shape[0] !== r || c.a.shape[1] !== inF || c.b.shape[0] !== out || c.b.shape[1] !== r) {
      throw new RangeError(`robustResidual: client ${i} has lora_A ${shapeString(c.a.shape)} and lora_B ${shapeString(c.b.shape)}, expected [${r}, ${inF}] and [${out}, ${r}]`);
    }
  });
  const keep = options.keep ?? true;
  const block = Math.max(1, Math.min(out, Math.floor((options.blockValues ?? BLOCK_VALUES) / (k * Math.max(1, inF)))));
  // Client-innermost (row, column, client): the k values of a coordinate are contiguous for the reduction.
  const prod = new Float64Array(block * inF * k);
  const g = new Float64Array(inF);
  const v = new Float64Array(k);
  const drop = rule.name === 'trimmed-mean' ? trimmedPerEnd(rule.trim, k) : 0;
  const d = keep ? new Float32Array(out * inF) : null;
  const abar = global.a.data;
  const bbar = global.b.data;
  let dev2 = 0;
  let ideal2 = 0;
  let zero = true;
  for (let o0 = 0; o0 < out; o0 += block) {
    const n = Math.min(block, out - o0);
    for (let i = 0; i < k; i++) {
      const a = clients[i].a.data;
      const b = clients[i].b.data;
      for (let o = 0; o < n; o++) {
        // The row of B_i A_i contiguously first, then one strided pass into `prod`.
        g.fill(0);
        for (let j = 0; j < r; j++) {
          const c = b[(o0 + o) * r + j];
          if (c === 0) continue;
          const aj = j * inF;
          for (let x = 0; x < inF; x++) g[x] += c * a[aj + x];
        }
        const row = o * inF * k + i;
        for (let x = 0; x < inF; x++) prod[row + x * k] = g[x];
      }
    }
    for (let o = 0; o < n; o++) {
      g.fill(0);
      for (let j = 0; j < r; j++) {
        const c = bbar[(o0 + o) * r + j];
        if (c === 0) continue;
        for (let x = 0; x < inF; x++) g[x] += c * abar[j * inF + x];
      }
      for (let x = 0; x < inF; x++) {
        const at = (o * inF + x) * k;
        for (let i = 0; i < k; i++) v[i] = prod[at + i];
        const agg = reduce(v, k, rule, drop);
        const dx = scale * (agg - g[x]);
        dev2 += dx * dx;
        ideal2 += scale * agg * scale * agg;
        if (dx !== 0) zero = false;
        if (d !== null) d[(o0 + o) * inF + x] = dx;
      }
    }
  }
  return { d: d === null ? null : { shape: [out, inF], data: d }, deviationNorm: Math.sqrt(dev2), idealUpdateNorm: Math.sqrt(ideal2), zero };
}

/**
 * rule_i(s·B_i A_i) on stored row `row` of W0's layout (linear: output row, in values; conv1d: input
 * column, out values), added into `acc`; `scratch` holds k × cols values. For the float64 checks.
 */
export function addRobustDeltaRow(acc: Float64Array, clients: readonly LoraFactors[], scale: number, rule: AggregationRule, layout: Layout, row: number, scratch: Float64Array): void {
  const k = clients.length;
  const cols = acc.length;
  scratch.fill(0, 0, k * cols);
  clients.forEach((f, i) => {
    const [r, inF] = f.a.shape;
    const out = f.b.shape[0];
    const base = i * cols;
    for (let j = 0; j < r; j++) {
      if (layout === 'linear') {
        const c = f.b.data[row * r + j];
        for (let x = 0; x < inF; x++) scratch[base + x] += c * f.a.data[j * inF + x];
      } else {
        const c = f.a.data[j * inF + row];
        for (let o = 0; o < out; o++) scratch[base + o] += c * f.b.data[o * r + j];
      }
    }
  });
  const drop = rule.name === 'trimmed-mean' ? trimmedPerEnd(rule.trim, k) : 0;
  const v = new Float64Array(k);
  for (let x = 0; x < cols; x++) {
    for (let i = 0; i < k; i++) v[i] = scratch[i * cols + x];
    acc[x] += scale * reduce(v, k, rule, drop);
  }
}

/**
 * A dense out × in D (`linear` orientation) as the factored update scale 1·P·Q, with the identity on
 * the shorter side (P = D, Q = I when in ≤ out; else P = I, Q = D), for consumers that apply only
 * factored updates (the stored-weight updater of `fedex aggregate`). Exact: every product is D·1 or
 * 0·x. It costs out·in·min(out, in) multiply-adds and a min(out, in)² identity.
 */
export function denseAsFactored(d: Matrix<Float32Array>, layout: Layout): FactoredUpdate {
  const [out, inF] = d.shape;
  const n = Math.min(out, inF);
  const eye = new Float32Array(n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  const identity: Matrix<Float32Array> = { shape: [n, n], data: eye };
  return inF <= out ? { form: 'factored', p: d, q: identity, scale: 1, layout } : { form: 'factored', p: identity, q: d, scale: 1, layout };
}
