/**
 * Figures for the dashboard, at bounded cost: how far the global adapter moved in a round
 * (‖ΔĀ‖_F, ‖ΔB̄‖_F), how far each client's adapter is from the new global (‖A_i − Ā‖_F,
 * ‖B_i − B̄‖_F) — O(k·r·(out + in)) per module — and the `update_heatmap` of a round: the change of
 * the global model's effective weight W0 + s·B̄Ā, max-|·| pooled to at most 32 × 32. The heatmap
 * needs the dense out × in change, so it is computed (one fused product through the
 * `ProductBackend`) only for modules of at most `HEATMAP_MAX_ELEMENTS` elements and a product of at
 * most `HEATMAP_MAX_MACS` multiply-adds; others get a note instead of values.
 */
import type { LoraFactors } from '../../core/lora.js';
import { effectiveFactors } from '../../core/loraSb.js';
import type { ProductBackend } from '../../core/product.js';
import type { Matrix } from '../../core/tensor.js';
import type { ModuleLayout } from '../protocol/adapterTensors.js';
import { planScaling, type FederationPlan } from './config.js';
import type { HeatmapModule, UpdateHeatmap } from './events.js';
import type { StepModule } from './residuals.js';

/** Largest module (out × in) whose dense update the heatmap forms: 4 Mi elements (16 MiB float32). */
export const HEATMAP_MAX_ELEMENTS = 4 * 1024 * 1024;
/** Largest product (out · in · inner multiply-adds) the heatmap spends on one module. */
export const HEATMAP_MAX_MACS = 1 << 30;
/** Most modules in one `update_heatmap` event (layout order). */
export const HEATMAP_MAX_MODULES = 64;
/** Most cells along each side of a pooled heatmap. */
export const HEATMAP_MAX_CELLS = 32;

/** ‖x − y‖_F in float64 (`y` absent: ‖x‖_F). */
export function differenceNorm(x: ArrayLike<number>, y?: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const d = y === undefined ? x[i] : x[i] - y[i];
    s += d * d;
  }
  return Math.sqrt(s);
}

/** How far a module's adapters moved: the global over the round, and each client from the new global. */
export interface AdapterDrift {
  /** ‖Ā_r − Ā_{r−1}‖_F. */
  readonly globalDeltaANorm: number;
  /** ‖B̄_r − B̄_{r−1}‖_F. */
  readonly globalDeltaBNorm: number;
  /** ‖A_i − Ā_r‖_F per client, in the order given. */
  readonly clientDeltaANorms: number[];
  /** ‖B_i − B̄_r‖_F per client. */
  readonly clientDeltaBNorms: number[];
}

/** Drift norms of one module (float64 sums; O(k·r·(out + in))). */
export function adapterDrift(previous: LoraFactors, global: LoraFactors, clients: readonly LoraFactors[]): AdapterDrift {
  return {
    globalDeltaANorm: differenceNorm(global.a.data, previous.a.data),
    globalDeltaBNorm: differenceNorm(global.b.data, previous.b.data),
    clientDeltaANorms: clients.map((c) => differenceNorm(c.a.data, global.a.data)),
    clientDeltaBNorms: clients.map((c) => differenceNorm(c.b.data, global.b.data)),
  };
}

/** A max-|·| pooled matrix: cell (i, j) = max |m| over rows [i·poolRows, …) and columns [j·poolCols, …). */
export interface PooledMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly poolRows: number;
  readonly poolCols: number;
  /** rows × cols, row-major. */
  readonly values: Float64Array;
}

/** Max-|·| pooling of a row-major matrix to at most `maxCells` × `maxCells` (factors ⌈rows / maxCells⌉, ⌈cols / maxCells⌉). */
export function maxAbsPool(data: ArrayLike<number>, rows: number, cols: number, maxCells = HEATMAP_MAX_CELLS): PooledMatrix {
  if (data.length !== rows * cols) throw new RangeError(`maxAbsPool: ${data.length} values for a ${rows} × ${cols} matrix`);
  const poolRows = Math.max(1, Math.ceil(rows / maxCells));
  const poolCols = Math.max(1, Math.ceil(cols / maxCells));
  const outRows = Math.ceil(rows / poolRows);
  const outCols = Math.ceil(cols / poolCols);
  const values = new Float64Array(outRows * outCols);
  for (let i = 0; i < rows; i++) {
    const cellRow = Math.floor(i / poolRows) * outCols;
    const row = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = Math.abs(data[row + j]);
      const c = cellRow + Math.floor(j / poolCols);
      if (v > values[c]) values[c] = v;
    }
  }
  return { rows: outRows, cols: outCols, poolRows, poolCols, values };
}

/** What a module's heatmap needs: its layout, scale, the global adapter before and after, and its base change. */
export interface HeatmapInput {
  readonly layout: ModuleLayout;
  readonly scale: number;
  readonly previous: LoraFactors;
  readonly global: LoraFactors;
  /** The base change of the round (FedEx), as applied to the master copy; undefined when the base did not change. */
  readonly step?: StepModule;
}

/** Six significant digits: plenty for a colour scale, a third of the JSON. */
function compact(x: number): number {
  return Number(x.toPrecision(6));
}

/**
 * The change of the module's effective weight over the round, out × in (`linear` orientation,
 * whatever the stored layout): ΔW = s·B̄Ā − s·B̄₀Ā₀ + ΔW0, where ΔW0 is the base update (scale·P·Q,
 * or D). For FedEx-LoRA this is exactly Σ w_i (W0 + s·B_i A_i) minus the previous global effective
 * weight; for FedIT and FFA-LoRA (ΔW0 = 0) it is what plain averaging applied. One fused product
 * [s·B̄ | −s·B̄₀ | scale·P]·[Ā; Ā₀; Q], plus D when the update is dense.
 */
export async function effectiveUpdate(input: HeatmapInput, backend: ProductBackend): Promise<Matrix<Float32Array>> {
  const { layout: m, scale, previous, global, step } = input;
  const r = global.a.shape[0];
  const extra = step?.form === 'factored' ? step.p.shape[1] : 0;
  const inner = 2 * r + extra;
  const p = new Float32Array(m.out * inner);
  const q = new Float32Array(inner * m.in);
  for (let o = 0; o < m.out; o++) {
    for (let j = 0; j < r; j++) {
      p[o * inner + j] = scale * global.b.data[o * r + j];
      p[o * inner + r + j] = -scale * previous.b.data[o * r + j];
    }
    if (step?.form === 'factored') { for (let j = 0; j < extra; j++) p[o * inner + 2 * r + j] = step.scale * step.p.data[o * extra + j]; }
  }
  q.set(global.a.data, 0);
  q.set(previous.a.data, r * m.in);
  if (step?.form === 'factored') q.set(step.q.data, 2 * r * m.in);
  const target: Matrix<Float32Array> = { shape: [m.out, m.in], data: step?.form === 'dense' ? scaledCopy(step.d.data, step.scale) : new Float32Array(m.out * m.in) };
  await backend.addScaledProduct(target, 'linear', { shape: [m.out, inner], data: p }, { shape: [inner, m.in], data: q }, 1);
  return target;
}

function scaledCopy(d: Float32Array, scale: number): Float32Array {
  if (scale === 1) return Float32Array.from(d);
  const out = new Float32Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = scale * d[i];
  return out;
}

/** One module's heatmap entry: pooled values, or `values: null` and a note when the dense update is too costly. */
export async function moduleHeatmap(input: HeatmapInput, backend: ProductBackend): Promise<HeatmapModule> {
  const { layout: m } = input;
  const elements = m.out * m.in;
  const inner = 2 * input.global.a.shape[0] + (input.step?.form === 'factored' ? input.step.p.shape[1] : 0);
  const head = { module: m.module, out: m.out, in: m.in };
  const skipped = (note: string): HeatmapModule => ({ ...head, rows: 0, cols: 0, poolRows: 0, poolCols: 0, maxAbs: null, norm: null, values: null, note });
  if (elements > HEATMAP_MAX_ELEMENTS) return skipped(`not computed: ${m.out} × ${m.in} = ${elements} elements exceeds ${HEATMAP_MAX_ELEMENTS}`);
  if (elements * inner > HEATMAP_MAX_MACS) return skipped(`not computed: the update's product has inner dimension ${inner} (${(elements * inner / 1e9).toFixed(2)} G multiply-adds, more than ${(HEATMAP_MAX_MACS / 1e9).toFixed(2)} G)`);
  const delta = await effectiveUpdate(input, backend);
  const pooled = maxAbsPool(delta.data, m.out, m.in);
  let maxAbs = 0;
  for (const v of pooled.values) if (v > maxAbs) maxAbs = v;
  return {
    ...head,
    rows: pooled.rows,
    cols: pooled.cols,
    poolRows: pooled.poolRows,
    poolCols: pooled.poolCols,
    maxAbs,
    norm: differenceNorm(delta.data),
    values: Array.from(pooled.values, compact),
  };
}

/**
 * The `update_heatmap` of an aggregated round: the first `HEATMAP_MAX_MODULES` layout modules, one
 * at a time (one dense update alive at a time). Null when `cancelled()` turns true on the way.
 */
export async function roundHeatmap(
  plan: FederationPlan,
  round: number,
  previous: ReadonlyMap<string, LoraFactors>,
  global: ReadonlyMap<string, LoraFactors>,
  steps: readonly StepModule[],
  backend: ProductBackend,
  cancelled: () => boolean = () => false,
): Promise<UpdateHeatmap | null> {
  const byModule = new Map(steps.map((m) => [m.module, m]));
  const layout = plan.layout.slice(0, HEATMAP_MAX_MODULES);
  const modules: HeatmapModule[] = [];
  for (const m of layout) {
    if (cancelled()) return null;
    const step = byModule.get(m.module);
    modules.push(await moduleHeatmap({
      layout: m,
      scale: planScaling(plan, m.rank),
      previous: effectiveFactors(previous.get(m.module)!),
      global: effectiveFactors(global.get(m.module)!),
      ...(step !== undefined ? { step } : {}),
    }, backend));
  }
  return { round, method: plan.method, modules, omittedModules: plan.layout.length - layout.length };
}
