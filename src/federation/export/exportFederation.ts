/**
 * `fedex export`: a finished (or interrupted) federation as what users deploy (docs/export.md).
 *
 * - `adapter`: ONE PEFT LoRA adapter relative to the ORIGINAL base, whose B·A is the federation's
 *   total update per module (every folded residual plus the global adapter), re-factored by
 *   core/lowRank.ts at its exact numerical rank or below (`maxRank`, `maxRelativeError`). Each
 *   module keeps its own rank with alpha = rank (scaling 1), written as rank_pattern/alpha_pattern.
 * - `merged`: the original base with the total update added, in the base's dtype and sharding,
 *   streamed tensor by tensor; the rounding of every down-cast is reported.
 *
 * Peak memory is one module: pass 1 re-factors module by module and parks each module's float32
 * factors (and, for the merged check, the exact update on the rows it samples) in a part file; the
 * adapter and the merged model are then written from those parts, so the run's terms are read once.
 * Every module is checked on sampled rows against the exact terms in float64. Nothing appears at `out`
 * unless everything succeeded.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { refactorLowRank, refactorLowRankWith, truncateLowRank, type GemmBackend, type UpdateTerm } from '../../core/lowRank.js';
import { exactnessSampleRows } from '../../core/exactness.js';
import type { Layout } from '../../core/lora.js';
import type { Matrix } from '../../core/tensor.js';
import type { StrategyName } from '../../core/strategies/types.js';
import { resolveBaseKey } from '../../formats/adapterKeys.js';
import type { DowncastReport } from '../../formats/halfFloat.js';
import { createPeftAdapterWriter, mostCommon } from '../../formats/peft.js';
import { withSafetensors } from '../../formats/safetensors.js';
import { itemSize } from '../../formats/safetensorsHeader.js';
import { createSafetensorsWriter, writeSafetensors, type SafetensorsWriter, type TensorToWrite } from '../../formats/safetensorsWriter.js';
import type { StoredFloat, StoredWeightUpdater } from '../../formats/storedUpdate.js';
import { peftTargetModules } from '../../model/targetModules.js';
import { closeReaders, copyModelFiles, copyTensorBytes, openBase, resolveBase, writeShardIndex } from '../offline/inputs.js';
import { commitOutput, prepareOutput } from '../offline/outputFolder.js';
import type { ModuleLayout } from '../protocol/adapterTensors.js';
import { FEDERATION_TASK_TYPE } from '../shared/adapterFolders.js';
import { moduleLayout } from '../shared/baseWeights.js';
import { modelManifest } from '../shared/modelBase.js';
import { ExportError } from './errors.js';
import { openExportSource } from './aggregateSource.js';
import type { ExportSource } from './runUpdate.js';

/** The values of `fedex export --as`: one PEFT adapter on the original base, the merged model, or both. */
export const EXPORT_KINDS = ['adapter', 'merged', 'both'] as const;

/** What `fedex export --as` writes. */
export type ExportKind = (typeof EXPORT_KINDS)[number];

export interface ExportOptions {
  /** A run directory (`fedex host --out`) or a `fedex simulate --out` folder. */
  readonly source: string;
  /** Which run of a simulate folder (default: fedex when present). */
  readonly method?: StrategyName;
  readonly out: string;
  readonly as: ExportKind;
  /** Keep at most this many directions per module (adapter only; the merged model is exact). */
  readonly maxRank?: number;
  /** Lower a module's rank while ‖ΔW − B·A‖_F ≤ this share of ‖ΔW‖_F. */
  readonly maxRelativeError?: number;
  /** The original base model folder (default: the one the run recorded). */
  readonly base?: string;
  /** Merged weights: 'same' keeps each tensor's dtype; 'float32' writes adapted weights as F32. */
  readonly dtype?: 'same' | 'float32';
  readonly force?: boolean;
  /** Rows per module checked against the exact terms in float64. Default 8. */
  readonly checkRows?: number;
  /** Streams W0 + B·A through onnxruntime (required for `merged`). */
  readonly updater?: StoredWeightUpdater;
  /** Computes the re-factoring's matrix products (the CLI passes onnxruntime's; default: TypeScript). */
  readonly gemm?: GemmBackend;
  readonly onModule?: (done: number, total: number, module: string) => void;
  readonly onWarning?: (message: string) => void;
}

/** Sampled rows of a written result against the exact terms in float64. */
export interface RowCheck {
  readonly rows: number;
  /** ‖written − exact‖_F / ‖exact update‖_F over the sampled rows. */
  readonly relativeError: number;
  readonly maxAbsError: number;
}

export interface ExportModuleReport {
  readonly module: string;
  readonly out: number;
  readonly in: number;
  readonly layout: Layout;
  /** The federation's LoRA rank and scaling of this module. */
  readonly federationRank: number;
  /** Base steps plus the global adapter. */
  readonly terms: number;
  /** Inner size of the stacked factors. */
  readonly innerDim: number;
  /** Numerical rank of the total update. */
  readonly exactRank: number;
  /** Rank written to the adapter (0: no update; written as rank 1 of zeros, which PEFT requires). */
  readonly rank: number;
  /** ‖ΔW‖_F of the total update. */
  readonly updateNorm: number;
  /** ‖ΔW − B·A‖_F / ‖ΔW‖_F from the truncation (float64; 0 when exact). */
  readonly truncationError: number;
  /** The written float32 adapter on sampled output rows (truncation + float32 rounding). */
  readonly adapterCheck?: RowCheck;
  /** The merged float32 weight on sampled stored rows, before any down-cast. */
  readonly mergedCheck?: RowCheck;
  readonly downcast?: DowncastReport;
}

export interface ExportReport {
  readonly format: 'fedex-export';
  readonly version: 1;
  readonly source: { readonly kind: 'run' | 'aggregate'; readonly runDir: string; readonly method: StrategyName; readonly roundsCompleted: number; readonly rounds: number; readonly finished: boolean; readonly baseSteps: number };
  readonly base: string | null;
  readonly as: ExportKind;
  readonly options: { readonly maxRank: number | null; readonly maxRelativeError: number | null };
  readonly adapterDir: string | null;
  readonly modelDir: string | null;
  readonly modules: readonly ExportModuleReport[];
  readonly summary: {
    readonly modules: number;
    readonly exactModules: number;
    readonly maxTruncationError: number;
    readonly adapterBytes: number;
    readonly maxDowncastAbsError: number;
  };
  readonly seconds: number;
}

const REPORT_FILE = 'export-report.json';

/** Exact rows of ΔW in the stored orientation (linear: output rows; conv1d: input rows of ΔWᵀ), float64. */
function exactStoredRows(terms: readonly UpdateTerm[], m: ModuleLayout, rows: readonly number[]): Float64Array {
  const conv = m.fanInFanOut === true;
  const cols = conv ? m.out : m.in;
  const acc = new Float64Array(rows.length * cols);
  for (const t of terms) {
    rows.forEach((row, ri) => {
      const dst = ri * cols;
      if (t.kind === 'dense') {
        const d = t.d.data;
        for (let c = 0; c < cols; c++) acc[dst + c] += t.scale * (conv ? d[c * m.in + row] : d[row * m.in + c]);
        return;
      }
      const k = t.p.shape[1];
      const p = t.p.data;
      const q = t.q.data;
      if (!conv) {
        for (let j = 0; j < k; j++) {
          const f = t.scale * p[row * k + j];
          if (f !== 0) { for (let c = 0; c < cols; c++) acc[dst + c] += f * q[j * m.in + c]; }
        }
      } else {
        for (let o = 0; o < cols; o++) {
          let s = 0;
          for (let j = 0; j < k; j++) s += p[o * k + j] * q[j * m.in + row];
          acc[dst + o] += t.scale * s;
        }
      }
    });
  }
  return acc;
}

/** What the adapter check may exceed the reported truncation by: float32 rounding of the factors (measured ≤ 1e-7) with a wide margin. */
const CHECK_TOLERANCE = 1e-5;

/** The stored rows of a module's base weight that the merged check samples (stored layout: conv1d is in × out). */
function mergedSampleRows(m: ModuleLayout, i: number, checkRows: number): number[] {
  return exactnessSampleRows(m.fanInFanOut === true ? m.in : m.out, checkRows, 1000 + i);
}

/** Rows of B·A (float32 factors) in the stored orientation, float64 arithmetic. */
function productStoredRows(b: Matrix, a: Matrix, m: ModuleLayout, rows: readonly number[]): Float64Array {
  return exactStoredRows([{ kind: 'factored', p: b, q: a, scale: 1 }], m, rows);
}

function rowCheck(written: ArrayLike<number>, exact: Float64Array, rows: number): RowCheck {
  let err2 = 0;
  let ref2 = 0;
  let maxAbs = 0;
  for (let i = 0; i < exact.length; i++) {
    const e = written[i] - exact[i];
    err2 += e * e;
    ref2 += exact[i] * exact[i];
    maxAbs = Math.max(maxAbs, Math.abs(e));
  }
  return { rows, relativeError: ref2 === 0 ? Math.sqrt(err2) : Math.sqrt(err2 / ref2), maxAbsError: maxAbs };
}

function toF32(m: Matrix<Float64Array>): Matrix<Float32Array> {
  return { shape: m.shape, data: Float32Array.from(m.data) };
}

/** The original base folder: `given`, else the run's recorded one, checked against the run's content hash. */
async function originalBase(run: ExportSource, given: string | undefined, needed: boolean): Promise<string | null> {
  const dir = given !== undefined ? resolve(given) : run.modelDir;
  if (dir === undefined || dir === null) {
    if (!needed) return null;
    throw new ExportError('EXPORT_BASE', run.modelDir === null
      ? `run ${run.runDir} trained the synthetic model, which has no model folder: a merged model needs one`
      : `run ${run.runDir} does not record its model folder (model-source.json); give the original base with --base`);
  }
  let hash: string;
  try {
    hash = (await modelManifest(dir)).hash;
  } catch (err) {
    throw new ExportError('EXPORT_BASE', `cannot read the base model folder ${dir}: ${(err as Error).message}`, { cause: err });
  }
  if (run.baseHash !== null && hash !== run.baseHash) {
    throw new ExportError('EXPORT_BASE', `the base model folder ${dir} has content hash ${hash.slice(0, 12)}…, the federation in ${run.runDir} started from ${run.baseHash.slice(0, 12)}…; give the original base with --base`);
  }
  return dir;
}

/** Runs an export; returns its report (also written as export-report.json in `out`). */
export async function exportFederation(options: ExportOptions): Promise<ExportReport> {
  const started = performance.now();
  const wantAdapter = options.as !== 'merged';
  const wantMerged = options.as !== 'adapter';
  if (wantMerged && options.updater === undefined) throw new ExportError('EXPORT_OPTIONS', 'a merged export needs a weight updater');
  if (options.maxRank !== undefined && (!Number.isInteger(options.maxRank) || options.maxRank < 1)) throw new ExportError('EXPORT_OPTIONS', `--max-rank must be an integer ≥ 1, got ${options.maxRank}`);
  if (options.maxRelativeError !== undefined && !(options.maxRelativeError >= 0 && options.maxRelativeError < 1)) throw new ExportError('EXPORT_OPTIONS', `--max-error must be in [0, 1), got ${options.maxRelativeError}`);
  const run = await openExportSource(options.source, { method: options.method, base: options.base, merged: wantMerged, onWarning: options.onWarning });
  const out = resolve(options.out);
  let output: { tmp: string; cleanup: string } | null = null;
  try {
    if (!run.finished) options.onWarning?.(`the federation in ${run.runDir} has not finished: exporting its state after round ${run.round} (${run.roundsCompleted}/${run.rounds} rounds aggregated)`);
    const baseDir = await originalBase(run, options.base, wantMerged);
    if (wantAdapter && baseDir === null) {
      options.onWarning?.(run.modelDir === null
        ? `run ${run.runDir} trained the synthetic model: the adapter has no base model to load with`
        : `${run.runDir} does not record a base model folder: the adapter's base_model_name_or_path is left out (give --base to set it)`);
    }
    output = await prepareOutput(out, options.force === true);
    const { tmp } = output;
    const parts = join(tmp, '.parts');
    await mkdir(parts, { recursive: true });
    const checkRows = options.checkRows ?? 8;
    const modules: ExportModuleReport[] = [];
    const partOf = (i: number): string => join(parts, `module-${i}.safetensors`);
    // Pass 1: re-factor each module, check it, park its exact float32 factors.
    for (const [i, m] of run.layout.entries()) {
      const terms = await run.terms(m);
      const full = options.gemm !== undefined ? await refactorLowRankWith(options.gemm, terms, m.out, m.in) : refactorLowRank(terms, m.out, m.in);
      const kept = truncateLowRank(full, { ...(options.maxRank !== undefined ? { maxRank: options.maxRank } : {}), ...(options.maxRelativeError !== undefined ? { maxRelativeError: options.maxRelativeError } : {}) });
      const b = toF32(full.b);
      const a = toF32(full.a);
      const part = new Map<string, TensorToWrite>([
        ['B', { dtype: 'F32', shape: b.shape, data: b.data }],
        ['A', { dtype: 'F32', shape: a.shape, data: a.data }],
      ]);
      const mergedRows = wantMerged ? mergedSampleRows(m, i, checkRows) : [];
      if (mergedRows.length > 0) {
        const exact = exactStoredRows(terms, m, mergedRows);
        part.set('exactRows', { dtype: 'F64', shape: [mergedRows.length, exact.length / mergedRows.length], data: exact });
      }
      await writeSafetensors(partOf(i), part);
      const outRows = exactnessSampleRows(m.out, checkRows, i + 1);
      const linear: ModuleLayout = { ...m, fanInFanOut: false };
      const exactRows = exactStoredRows(terms, linear, outRows);
      const adapterCheck = rowCheck(productStoredRows(toF32(kept.b), toF32(kept.a), linear, outRows), exactRows, outRows.length);
      // Every direction kept (what the merged model and an untruncated adapter hold), as float32
      // factors on the sampled rows against the exact terms: float32 rounding (measured ≤ 1e-7) and
      // the directions below the resolution. More means the re-factorization is wrong.
      const fullCheck = kept.rank === full.rank ? adapterCheck : rowCheck(productStoredRows(b, a, linear, outRows), exactRows, outRows.length);
      if (!(fullCheck.relativeError <= full.relativeError + CHECK_TOLERANCE)) {
        throw new ExportError('EXPORT_CHECK', `module ${m.module}: the re-factored update differs from the exact one by ${fullCheck.relativeError.toExponential(2)} (relative, on ${outRows.length} sampled rows), `
          + `more than float32 rounding allows (${CHECK_TOLERANCE}); nothing was written. Please report this with the run directory.`);
      }
      modules.push({
        module: m.module,
        out: m.out,
        in: m.in,
        layout: moduleLayout(m),
        federationRank: m.rank,
        terms: terms.length,
        innerDim: full.innerDim,
        exactRank: full.exactRank,
        rank: kept.rank,
        updateNorm: full.norm,
        truncationError: kept.relativeError,
        ...(wantAdapter ? { adapterCheck } : {}),
      });
      options.onModule?.(i + 1, run.layout.length * (wantMerged ? 2 : 1), m.module);
    }
    let adapterBytes = 0;
    if (wantAdapter) adapterBytes = await writeAdapter(join(tmp, 'adapter'), run.layout, modules, partOf, { targetModules: run.targetModules, baseDir });
    if (wantMerged) {
      await writeMerged(join(tmp, 'model'), baseDir!, run.layout, modules, partOf, options);
    }
    await rm(parts, { recursive: true, force: true });
    const report: ExportReport = {
      format: 'fedex-export',
      version: 1,
      source: { kind: run.kind, runDir: run.runDir, method: run.method, roundsCompleted: run.roundsCompleted, rounds: run.rounds, finished: run.finished, baseSteps: run.steps },
      base: baseDir,
      as: options.as,
      options: { maxRank: options.maxRank ?? null, maxRelativeError: options.maxRelativeError ?? null },
      adapterDir: wantAdapter ? join(out, 'adapter') : null,
      modelDir: wantMerged ? join(out, 'model') : null,
      modules,
      summary: {
        modules: modules.length,
        exactModules: modules.filter((m) => m.rank === m.exactRank).length,
        maxTruncationError: Math.max(0, ...modules.map((m) => m.truncationError)),
        adapterBytes,
        maxDowncastAbsError: Math.max(0, ...modules.map((m) => m.downcast?.maxAbsError ?? 0)),
      },
      seconds: (performance.now() - started) / 1000,
    };
    await writeFile(join(tmp, REPORT_FILE), `${JSON.stringify(report, null, 2)}\n`);
    const leftover = await commitOutput(tmp, out, options.force === true);
    output = null;
    if (leftover !== null) options.onWarning?.(`the previous output was replaced but could not be removed: it is in '${leftover}'`);
    return report;
  } finally {
    if (output !== null) await rm(output.cleanup, { recursive: true, force: true });
    await run.close();
  }
}

/** Writes the PEFT adapter from the parts (one module in memory at a time); returns its tensor bytes. */
async function writeAdapter(
  dir: string,
  layout: readonly ModuleLayout[],
  modules: ExportModuleReport[],
  partOf: (i: number) => string,
  fields: { readonly targetModules: readonly string[]; readonly baseDir: string | null },
): Promise<number> {
  const ranks = modules.map((m) => Math.max(1, m.rank));
  const r = mostCommon(ranks);
  const writer = await createPeftAdapterWriter(dir, {
    config: {
      r,
      loraAlpha: r,
      useRslora: false,
      fanInFanOut: layout.some((m) => m.fanInFanOut === true),
      targetModules: peftTargetModules(fields.targetModules, layout.map((m) => m.module)),
      taskType: FEDERATION_TASK_TYPE,
      ...(fields.baseDir !== null ? { baseModelNameOrPath: fields.baseDir } : {}),
    },
    // alpha = rank: scaling 1, the factors carry the update as it is.
    modules: layout.map((m, i) => ({ modulePath: m.module, rank: ranks[i], alpha: ranks[i], inFeatures: m.in, outFeatures: m.out })),
  });
  let bytes = 0;
  try {
    for (const [i, m] of layout.entries()) {
      const k = modules[i].rank;
      const { a, b } = await withSafetensors(partOf(i), async (reader) => ({ a: await reader.readMatrix('A'), b: await reader.readMatrix('B') }));
      const kept = Math.max(1, k);
      const bk = new Float32Array(m.out * kept);
      const had = b.shape[1];
      if (k > 0) { for (let o = 0; o < m.out; o++) bk.set(b.data.subarray(o * had, o * had + k), o * kept); }
      const ak = k > 0 ? a.data.slice(0, k * m.in) : new Float32Array(m.in);
      await writer.writeModule({ modulePath: m.module, A: { shape: [kept, m.in], data: ak }, B: { shape: [m.out, kept], data: bk } });
      bytes += 4 * kept * (m.in + m.out);
    }
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return bytes;
}

/** Streams the original base into `dir` with each adapted weight W0 + B·A (exact factors), in the base's dtype and sharding. */
async function writeMerged(
  dir: string,
  baseDir: string,
  layout: readonly ModuleLayout[],
  modules: ExportModuleReport[],
  partOf: (i: number) => string,
  options: ExportOptions,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const base = await resolveBase(baseDir);
  const view = await openBase(base);
  const updater = options.updater!;
  const toF32Dtype = options.dtype === 'float32';
  const keys = new Set(view.tensors.keys());
  const byKey = new Map<string, number>();
  layout.forEach((m, i) => {
    const key = resolveBaseKey(m.module, keys, { file: base.file });
    byKey.set(key, i);
  });
  let writer: SafetensorsWriter | null = null;
  let totalBytes = 0;
  let done = 0;
  try {
    for (const [fileIndex, reader] of view.readers.entries()) {
      const entries = [...reader.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, dtype: toF32Dtype && byKey.has(t.name) ? ('F32' as const) : t.dtype }));
      const file = base.index === undefined ? join(dir, 'model.safetensors') : join(dir, basename(base.files[fileIndex]));
      writer = await createSafetensorsWriter(file, entries, reader.metadata);
      for (const info of reader.tensors.values()) {
        const i = byKey.get(info.name);
        if (i === undefined) {
          await copyTensorBytes(reader, writer, info);
          continue;
        }
        const m = layout[i];
        const rows = mergedSampleRows(m, i, options.checkRows ?? 8);
        const { a, b, exact } = await withSafetensors(partOf(i), async (r) => ({
          a: await r.readMatrix('A'),
          b: await r.readMatrix('B'),
          // The exact update on those rows, computed in pass 1 from the terms.
          exact: rows.length > 0 ? await r.readFloat64('exactRows') : new Float64Array(0),
        }));
        const shape: [number, number] = [info.shape[0], info.shape[1]];
        const w = writer;
        const result = await updater.run(
          {
            shape,
            inDtype: info.dtype as StoredFloat,
            outDtype: (toF32Dtype ? 'F32' : info.dtype) as StoredFloat,
            sampleRows: rows,
            update: b.shape[1] === 0 ? null : { form: 'factored', p: b, q: a, scale: 1, layout: moduleLayout(m) },
          },
          { read: (start, into) => reader.readRawRangeInto(info.name, start, into), write: (bytes) => w.writeRawPart(info.name, bytes) },
        );
        const written = Float64Array.from(result.after, (v, j) => v - result.before[j]);
        modules[i] = { ...modules[i], mergedCheck: rowCheck(written, exact, rows.length), ...(result.downcast !== undefined ? { downcast: result.downcast } : {}) };
        done++;
        options.onModule?.(layout.length + done, layout.length * 2, m.module);
      }
      await writer.close();
      writer = null;
      totalBytes += entries.reduce((s, e) => s + e.shape.reduce((x, y) => x * y, 1) * itemSize(e.dtype), 0);
    }
    await writeShardIndex(dir, base, view, totalBytes);
    if (base.dir !== undefined) await copyModelFiles(base.dir, dir);
  } catch (err) {
    if (writer !== null) await writer.abort();
    throw err;
  } finally {
    await closeReaders(view.readers);
  }
}
