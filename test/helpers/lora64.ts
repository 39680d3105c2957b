// Independent float64 reference for offline aggregation tests. Reads base weights and adapter
// factors straight from the safetensors files (keys spelled out here, config read as raw JSON) and
// does the LoRA algebra with plain loops and an explicit transpose for Conv1D. Nothing here reuses
// the project's LoRA, strategy, product or exactness code.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { frobenius, maxAbs, maxAbsDiff } from './norms.js';

export { frobenius, maxAbs, maxAbsDiff } from './norms.js';

/** A dense row-major float64 matrix. */
export interface Mat64 {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
}

export type StoredLayout = 'linear' | 'conv1d';

/** One client's factors of one module, in float64: A is r × in, B is out × r. */
export interface Factors64 {
  readonly A: Mat64;
  readonly B: Mat64;
}

/** An adapter folder as the reference sees it. */
export interface Adapter64 {
  readonly r: number;
  readonly alpha: number;
  readonly fanInFanOut: boolean;
  /** By module path (without `base_model.model.`). */
  readonly modules: ReadonlyMap<string, Factors64>;
}

/** Reads every 2-D tensor of a safetensors file as float64, by name. */
export async function readAll64(file: string): Promise<Map<string, Mat64>> {
  const reader = await openSafetensors(file);
  try {
    const out = new Map<string, Mat64>();
    for (const info of reader.tensors.values()) {
      if (info.shape.length !== 2) continue;
      out.set(info.name, { rows: info.shape[0], cols: info.shape[1], data: await reader.readFloat64(info.name) });
    }
    return out;
  } finally {
    await reader.close();
  }
}

/** Reads a PEFT folder by hand: adapter_config.json as JSON, factors by their PEFT keys. */
export async function readAdapter64(dir: string): Promise<Adapter64> {
  const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as { r: number; lora_alpha: number; fan_in_fan_out?: boolean };
  const tensors = await readAll64(join(dir, 'adapter_model.safetensors'));
  const modules = new Map<string, Factors64>();
  for (const [key, A] of tensors) {
    const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(key);
    if (m === null) continue;
    const B = tensors.get(`base_model.model.${m[1]}.lora_B.weight`);
    if (B === undefined) throw new Error(`reference: ${dir} has lora_A but no lora_B for ${m[1]}`);
    modules.set(m[1], { A, B });
  }
  return { r: config.r, alpha: config.lora_alpha, fanInFanOut: config.fan_in_fan_out === true, modules };
}

/** a·b in float64 (plain triple loop). */
export function mul64(a: Mat64, b: Mat64): Mat64 {
  if (a.cols !== b.rows) throw new Error(`reference mul64: ${a.rows}×${a.cols} · ${b.rows}×${b.cols}`);
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let t = 0; t < a.cols; t++) {
      const x = a.data[i * a.cols + t];
      for (let j = 0; j < b.cols; j++) out[i * b.cols + j] += x * b.data[t * b.cols + j];
    }
  }
  return { rows: a.rows, cols: b.cols, data: out };
}

/** Explicit transpose. */
export function transpose64(a: Mat64): Mat64 {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j];
  return { rows: a.cols, cols: a.rows, data: out };
}

/** An out × in delta laid out as the base weight stores it: as is (Linear) or transposed (Conv1D). */
export function laidOut(delta: Mat64, layout: StoredLayout): Mat64 {
  return layout === 'linear' ? delta : transpose64(delta);
}

/** Σ c_i·M_i (same shapes). */
export function combine64(terms: readonly { c: number; m: Mat64 }[]): Mat64 {
  const { rows, cols } = terms[0].m;
  const out = new Float64Array(rows * cols);
  for (const { c, m } of terms) {
    if (m.rows !== rows || m.cols !== cols) throw new Error('reference combine64: shape mismatch');
    for (let x = 0; x < out.length; x++) out[x] += c * m.data[x];
  }
  return { rows, cols, data: out };
}

/** Normalised weights (uniform when absent). */
export function normalised(k: number, raw?: readonly number[]): number[] {
  const w = raw ?? new Array<number>(k).fill(1);
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / total);
}

/** The ideal update Σ w_i B_i A_i (out × in, before scaling). */
export function idealUpdate(clients: readonly Factors64[], weights: readonly number[]): Mat64 {
  return combine64(clients.map((f, i) => ({ c: weights[i], m: mul64(f.B, f.A) })));
}

/** Result of the exactness comparison of one module. */
export interface Exactness64 {
  /** max |W0' + s·lay(B̄Ā) − Σ w_i (W0 + s·lay(B_i A_i))|. */
  readonly err: number;
  /** 1e-5·max|s·Σ w_i B_i A_i| + 1e-6·max|W0|. */
  readonly tol: number;
  /** max|s·Σ w_i B_i A_i|. */
  readonly updateMax: number;
}

/**
 * Checks W0' + s·lay(B̄Ā) against Σ w_i (W0 + s·lay(B_i A_i)) in float64, with the tolerance relative
 * to the update size stated in `Exactness64.tol`. `layout` decides the orientation of every delta.
 */
export function exactness64(input: {
  w0: Mat64;
  w0New: Mat64;
  global: Factors64;
  clients: readonly Factors64[];
  weights: readonly number[];
  scale: number;
  layout: StoredLayout;
}): Exactness64 {
  const { w0, w0New, global, clients, weights, scale, layout } = input;
  const ideal = laidOut(idealUpdate(clients, weights), layout);
  // Σ w_i (W0 + s·Δ_i) = W0·Σw + s·Σ w_i Δ_i, with Σw = 1.
  const target = combine64([{ c: 1, m: w0 }, { c: scale, m: ideal }]);
  const got = combine64([{ c: 1, m: w0New }, { c: scale, m: laidOut(mul64(global.B, global.A), layout) }]);
  if (got.rows !== target.rows || got.cols !== target.cols) throw new Error(`reference exactness64: result ${got.rows}×${got.cols} vs target ${target.rows}×${target.cols}`);
  const updateMax = scale * maxAbs(ideal.data);
  return { err: maxAbsDiff(got.data, target.data), tol: 1e-5 * updateMax + 1e-6 * maxAbs(w0.data), updateMax };
}

/** ‖s·(Σ w_i B_i A_i − B̄Ā)‖_F / ‖s·Σ w_i B_i A_i‖_F. */
export function relativeDeviation64(clients: readonly Factors64[], weights: readonly number[], global: Factors64, scale: number): number {
  const ideal = idealUpdate(clients, weights);
  const residual = combine64([{ c: 1, m: ideal }, { c: -1, m: mul64(global.B, global.A) }]);
  return (scale * frobenius(residual.data)) / (scale * frobenius(ideal.data));
}
