/**
 * The float64 exactness check behind the CLI report: after a round, how far is the effective weight
 * W0' + s·B̄Ā (W0' and Ā, B̄ as stored, float32; or the float32 merged weight) from
 * Σ w_i (W0 + s·B_i A_i) recomputed in float64?
 * Works row by row on the stored layout of W0 (out × in for `linear`, in × out for `conv1d`), on all
 * rows or on a seeded random subset for big modules. It is a check: O(rows·k·r·cols) time.
 */
import { shapeString } from './tensor.js';
import type { Matrix } from './tensor.js';
import { baseWeightShape, type Layout, type LoraFactors } from './lora.js';
import { createRng, sampleWithoutReplacement } from './random.js';
import { addRobustDeltaRow, isRobustRule, type AggregationRule } from './robust.js';

/**
 * Some stored rows of a matrix, packed: `data` holds row `rows[i]` of the full `shape` at
 * [i·cols, (i+1)·cols). Lets a streaming caller keep only the rows a sampled check reads.
 */
export interface MatrixRows {
  readonly shape: readonly [number, number];
  readonly rows: readonly number[];
  readonly data: ArrayLike<number>;
}

/** A whole matrix, or only some of its rows. */
export type CheckedMatrix = Matrix | MatrixRows;

/**
 * What the round produced for one module: W0' with the global (Ā, B̄) kept as an adapter, or the
 * float32 merged weight W0' + s·B̄Ā (an exported merged model).
 */
export type ExactnessResult =
  | { readonly kind: 'adapter'; readonly w0New: CheckedMatrix; readonly global: LoraFactors }
  | { readonly kind: 'merged'; readonly weight: CheckedMatrix };

/** Everything the check needs about one module after a round. */
export interface ExactnessInput {
  /** Base weight before the round, stored layout (or at least the rows checked). */
  readonly w0: CheckedMatrix;
  readonly clients: readonly LoraFactors[];
  readonly weights: ArrayLike<number>;
  readonly scale: number;
  readonly layout: Layout;
  readonly result: ExactnessResult;
  /** A robust rule (robust.ts): compare with rule_i(W0 + s·B_i A_i) instead of the weighted mean (weights then unused). */
  readonly rule?: AggregationRule;
}

/** Tolerance: maxAbsError ≤ relative·maxAbsUpdate + base·maxAbsBase (float32 round-off of the update and of W0'). */
export interface ExactnessTolerance {
  readonly relative: number;
  readonly base: number;
}
export const DEFAULT_EXACTNESS_TOLERANCE: ExactnessTolerance = { relative: 1e-5, base: 1e-6 };

export interface ExactnessReport {
  readonly rows: number;
  readonly rowsChecked: number;
  /** max |(W0' + s·B̄Ā) − Σ w_i (W0 + s·B_i A_i)| over the checked rows. */
  readonly maxAbsError: number;
  /** max |s·Σ w_i B_i A_i| over the checked rows: the size of the ideal update. */
  readonly maxAbsUpdate: number;
  /** max |W0| over the checked rows. */
  readonly maxAbsBase: number;
  /** maxAbsError / maxAbsUpdate (0/0 := 0). */
  readonly relativeError: number;
  /** Frobenius norms of the error and of the ideal update over the checked rows, and their ratio. */
  readonly errorNorm: number;
  readonly updateNorm: number;
  readonly relativeErrorNorm: number;
  readonly tolerance: number;
  readonly withinTolerance: boolean;
}

function checkInput(x: ExactnessInput): [number, number] {
  if (x.clients.length === 0) throw new RangeError('checkExactness: no clients');
  if (x.clients.length !== x.weights.length) throw new RangeError(`checkExactness: ${x.clients.length} clients but ${x.weights.length} weights`);
  const [r, inF] = x.clients[0].a.shape;
  const out = x.clients[0].b.shape[0];
  const shape = baseWeightShape(x.layout, inF, out);
  const factors: [string, LoraFactors][] = x.clients.map((c, i) => [`client ${i}`, c]);
  const weightsToCheck: [string, CheckedMatrix][] = [['w0', x.w0]];
  if (x.result.kind === 'adapter') {
    factors.push(['the global adapter', x.result.global]);
    weightsToCheck.push(['w0New', x.result.w0New]);
  } else {
    weightsToCheck.push(['the merged weight', x.result.weight]);
  }
  for (const [name, m] of weightsToCheck) {
    if (m.shape[0] !== shape[0] || m.shape[1] !== shape[1]) {
      throw new RangeError(`checkExactness: ${name} is ${shapeString(m.shape)}, expected ${shapeString(shape)} for the ${x.layout} layout with lora_A [${r}, ${inF}] and lora_B [${out}, ${r}]`);
    }
    const held = 'rows' in m ? m.rows.length : shape[0];
    if (m.data.length !== held * shape[1]) throw new RangeError(`checkExactness: ${name} holds ${m.data.length} values for ${held} rows of ${shape[1]}`);
  }
  for (const [name, c] of factors) {
    if (c.a.shape[0] !== r || c.a.shape[1] !== inF || c.b.shape[0] !== out || c.b.shape[1] !== r) {
      throw new RangeError(`checkExactness: ${name} has lora_A ${shapeString(c.a.shape)} and lora_B ${shapeString(c.b.shape)}, expected [${r}, ${inF}] and [${out}, ${r}]`);
    }
  }
  return shape;
}

/** acc += w·(B·A) restricted to stored row `row` (linear: output row; conv1d: input column, transposed). */
function addDeltaRow(acc: Float64Array, f: LoraFactors, w: number, layout: Layout, row: number): void {
  const [r, inF] = f.a.shape;
  const out = f.b.shape[0];
  const a = f.a.data;
  const b = f.b.data;
  if (layout === 'linear') {
    for (let j = 0; j < r; j++) {
      const c = w * b[row * r + j];
      for (let x = 0; x < inF; x++) acc[x] += c * a[j * inF + x];
    }
  } else {
    for (let j = 0; j < r; j++) {
      const c = w * a[j * inF + row];
      for (let o = 0; o < out; o++) acc[o] += c * b[o * r + j];
    }
  }
}

/** Offset of stored row `t` in `m.data`; throws when `m` holds only other rows. */
function rowStart(m: CheckedMatrix, positions: ReadonlyMap<number, number> | undefined, t: number, cols: number, name: string): number {
  if (positions === undefined) return t * cols;
  const i = positions.get(t);
  if (i === undefined) throw new RangeError(`checkExactness: row ${t} is checked but ${name} holds only rows ${(m as MatrixRows).rows.slice(0, 5).join(', ')}${(m as MatrixRows).rows.length > 5 ? ', …' : ''}`);
  return i * cols;
}

function positionsOf(m: CheckedMatrix): Map<number, number> | undefined {
  return 'rows' in m ? new Map(m.rows.map((t, i) => [t, i])) : undefined;
}

/** Checks exactness on the given stored rows of W0 (all rows when omitted). */
export function checkExactness(input: ExactnessInput, rows?: readonly number[], tolerance: ExactnessTolerance = DEFAULT_EXACTNESS_TOLERANCE): ExactnessReport {
  const [nRows, cols] = checkInput(input);
  const list = rows ?? Array.from({ length: nRows }, (_, i) => i);
  let sumW = 0;
  for (let i = 0; i < input.weights.length; i++) sumW += input.weights[i];
  const ideal = new Float64Array(cols);
  const have = new Float64Array(cols);
  let maxErr = 0;
  let maxUpd = 0;
  let maxBase = 0;
  let err2 = 0;
  let upd2 = 0;
  const after = input.result.kind === 'adapter' ? input.result.w0New : input.result.weight;
  const w0Rows = positionsOf(input.w0);
  const afterRows = positionsOf(after);
  // A robust rule commutes with the common W0 (its weights sum to 1 in effect): rule_i(W0 + s·B_i A_i) = W0 + s·rule_i(B_i A_i).
  const robust = isRobustRule(input.rule);
  if (robust) sumW = 1;
  const scratch = new Float64Array(robust ? input.clients.length * cols : 0);
  for (const t of list) {
    if (!Number.isInteger(t) || t < 0 || t >= nRows) throw new RangeError(`checkExactness: row ${t} is outside [0, ${nRows})`);
    ideal.fill(0);
    have.fill(0);
    if (robust) addRobustDeltaRow(ideal, input.clients, 1, input.rule!, input.layout, t, scratch);
    else input.clients.forEach((c, i) => addDeltaRow(ideal, c, input.weights[i], input.layout, t));
    const { result } = input;
    if (result.kind === 'adapter') addDeltaRow(have, result.global, 1, input.layout, t);
    const s0 = rowStart(input.w0, w0Rows, t, cols, 'w0');
    const s1 = rowStart(after, afterRows, t, cols, result.kind === 'adapter' ? 'w0New' : 'the merged weight');
    for (let x = 0; x < cols; x++) {
      const w0 = input.w0.data[s0 + x];
      const update = input.scale * ideal[x];
      const expected = sumW * w0 + update;
      const actual = after.data[s1 + x] + input.scale * have[x];
      const e = Math.abs(actual - expected);
      maxErr = Math.max(maxErr, e);
      maxUpd = Math.max(maxUpd, Math.abs(update));
      maxBase = Math.max(maxBase, Math.abs(w0));
      err2 += e * e;
      upd2 += update * update;
    }
  }
  const tol = tolerance.relative * maxUpd + tolerance.base * maxBase;
  const ratio = (a: number, b: number): number => (a === 0 ? 0 : b === 0 ? Infinity : a / b);
  return {
    rows: nRows,
    rowsChecked: list.length,
    maxAbsError: maxErr,
    maxAbsUpdate: maxUpd,
    maxAbsBase: maxBase,
    relativeError: ratio(maxErr, maxUpd),
    errorNorm: Math.sqrt(err2),
    updateNorm: Math.sqrt(upd2),
    relativeErrorNorm: ratio(Math.sqrt(err2), Math.sqrt(upd2)),
    tolerance: tol,
    withinTolerance: maxErr <= tol,
  };
}

/**
 * `sampleRows` stored rows of a matrix of `nRows` rows (all of them if there are fewer), drawn by a
 * seeded generator and sorted, for a sampled {@link checkExactness}: a streaming caller keeps just
 * these rows of W0 before updating it in place.
 */
export function exactnessSampleRows(nRows: number, sampleRows: number, seed: number): number[] {
  return sampleWithoutReplacement(nRows, Math.min(nRows, Math.max(0, Math.floor(sampleRows))), createRng(seed));
}
