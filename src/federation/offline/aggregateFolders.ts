/**
 * Offline aggregation: one federated round over adapters saved as PEFT folders, streamed so that
 * memory stays a few row blocks plus one module's LoRA factors, whatever the size of the model.
 * The adapter folders are opened as indexes (config and tensor entries checked up front); a
 * module's client factors are read when that module is aggregated and dropped after. Every updated
 * weight streams through a `StoredWeightUpdater` block by block: read as stored, widened to float32,
 * W0 + s·P·Q, rounded back to the stored dtype (or float32 when asked), written; the rows the
 * float64 exactness check samples come back from before and after the update, and the rounding is
 * measured on the way. A weight that is not updated is copied byte for byte. The global adapter's
 * tensors are written as they are produced. The output folder appears only when everything
 * succeeded (written to a temporary sibling, renamed at the end).
 *
 * FedEx also keeps the residual it folds into the base, `residual.safetensors` (per module
 * `<module>.residual_P` out × inner and `<module>.residual_Q` inner × in, float32, linear
 * orientation; metadata `fedex.entries` as a coordinator's step file), so that `fedex export` can
 * rebuild one adapter relative to the input base (under a robust rule, `fedex aggregate --aggregation`,
 * a dense `<module>.residual` out × in instead: the rule's D has no factored form): each module's factors are parked in a part file
 * as the module is done and the file is assembled at the end, one module at a time. report.json
 * records the base folder (absolute) and its content hash, which the export checks its base against.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Layout } from '../../core/lora.js';
import { checkExactness, exactnessSampleRows } from '../../core/exactness.js';
import type { CheckedMatrix, ExactnessReport } from '../../core/exactness.js';
import { createStrategy } from '../../core/strategies/registry.js';
import { denseAsFactored, isRobustRule, robustCombine, ruleLabel, type AggregationRule } from '../../core/robust.js';
import type { AggregationStrategy, ModuleAggregateMetrics, StrategyName, ClientModuleResult } from '../../core/strategies/types.js';
import { summarizeDeviations } from '../../core/deviation.js';
import type { DeviationSummary } from '../../core/deviation.js';
import { createPeftAdapterWriter } from '../../formats/peft.js';
import type { PeftAdapterWriter } from '../../formats/peft.js';
import { PEFT_KEY_PREFIX } from '../../formats/peftIndex.js';
import type { PeftAdapterIndex } from '../../formats/peftIndex.js';
import { withSafetensors } from '../../formats/safetensors.js';
import type { SafetensorsReader } from '../../formats/safetensors.js';
import { createSafetensorsWriter, writeSafetensors } from '../../formats/safetensorsWriter.js';
import type { SafetensorsWriter } from '../../formats/safetensorsWriter.js';
import { itemSize } from '../../formats/safetensorsHeader.js';
import type { SafetensorsDType } from '../../formats/safetensorsHeader.js';
import type { DowncastReport } from '../../formats/halfFloat.js';
import type { StoredFloat, StoredWeightUpdater } from '../../formats/storedUpdate.js';
import { AggregationInputError } from './errors.js';
import { checkAdaptersAgree, checkWeights, closeAll, closeReaders, copyModelFiles, copyTensorBytes, openAdapters, openBase, planModules, resolveBase, writeShardIndex } from './inputs.js';
import type { BaseView, ModulePlan, ResolvedBase } from './inputs.js';
import { commitOutput, prepareOutput } from './outputFolder.js';
import { ROLE_RESIDUAL_DENSE, ROLE_RESIDUAL_P, ROLE_RESIDUAL_Q, tensorName } from '../protocol/adapterTensors.js';
import type { ResidualEntry } from '../protocol/adapterTensors.js';
import { modelManifest } from '../shared/modelBase.js';

/** The report of an aggregation, in its output folder. */
export const AGGREGATE_REPORT_FILE = 'report.json';
/** FedEx: the residual folded into the base, in its output folder (what `fedex export` reads). */
export const RESIDUAL_FILE = 'residual.safetensors';

export interface AggregateFoldersOptions {
  readonly method: StrategyName;
  /** A model folder (model.safetensors, optional config.json) or a .safetensors file. */
  readonly base: string;
  /** PEFT adapter folders, one per client. */
  readonly adapters: readonly string[];
  /** Raw client weights (normalised); uniform when absent. */
  readonly weights?: readonly number[];
  /** A robust rule (core/robust.ts; unweighted: not with `weights`); absent: the weighted mean. */
  readonly aggregation?: AggregationRule;
  readonly out: string;
  /** 'same' keeps each tensor's dtype; 'float32' writes adapted float weights as F32. */
  readonly dtype?: 'same' | 'float32';
  /** Replace an existing output folder. */
  readonly force?: boolean;
  /** Computes each updated weight block by block (the onnxruntime graph in the CLI). */
  readonly updater: StoredWeightUpdater;
  /** Stored rows per module checked against float64 (0 = all rows). Default 64. */
  readonly checkRows?: number;
  /** Called after each adapted module. */
  readonly onModule?: (done: number, total: number, module: string) => void;
  /** Called with a sentence when something went wrong that does not fail the run. */
  readonly onWarning?: (message: string) => void;
}

/** One module of report.json. */
export interface ModuleReport {
  readonly module: string;
  readonly baseKey: string;
  readonly layout: Layout;
  readonly storedShape: readonly number[];
  readonly dtype: SafetensorsDType;
  readonly rank: number;
  readonly scale: number;
  readonly deviationNorm: number;
  readonly idealUpdateNorm: number;
  readonly relativeDeviation: number;
  readonly residualRankBound: number;
  readonly baseUpdated: boolean;
  /** float32 result (before any down-cast) against Σ w_i (W0 + s·B_i A_i) in float64. */
  readonly exactness: ExactnessReport;
  /** Rounding of the float32 result into the written dtype (absent when written as F32/F64 or neither updated nor converted). */
  readonly downcast?: DowncastReport;
}

export interface AggregateReport {
  readonly method: StrategyName;
  /** `mean`, `median` or `trimmed-mean β`: what `exactMethod` and every module's `exactness` compare with (absent in reports written before it existed: mean). */
  readonly aggregation?: string;
  readonly exactMethod: boolean;
  /** The base's weights file (model.safetensors, the index, or the .safetensors file), as given. */
  readonly base: string;
  /** The base model folder as an absolute path (null: the base was a bare .safetensors file). */
  readonly baseDir: string | null;
  /**
   * Content hash of the base model folder (docs/protocol.md §8, what `fedex export` checks a base
   * against); null for a bare .safetensors file or a folder that cannot be hashed (no config.json).
   */
  readonly baseHash: string | null;
  /** FedEx: `residual.safetensors`, the residual folded into the base per module; null for FedIT/FFA. */
  readonly residualFile: string | null;
  readonly adapters: readonly string[];
  readonly weights: readonly number[];
  readonly outputDtype: 'same' | 'float32';
  readonly modelWritten: boolean;
  readonly modules: readonly ModuleReport[];
  readonly summary: DeviationSummary & {
    readonly maxExactnessRelativeError: number;
    readonly allWithinTolerance: boolean;
    readonly maxDowncastAbsError: number;
  };
  readonly seconds: number;
}

/** Runs one offline aggregation round and writes adapter/, model.safetensors (FedEx) and report.json. */
export async function aggregateFolders(options: AggregateFoldersOptions): Promise<AggregateReport> {
  const started = performance.now();
  if (options.adapters.length === 0) throw new AggregationInputError('NO_ADAPTERS', 'no adapter folders given');
  if (options.weights !== undefined) checkWeights(options.weights, options.adapters);
  const out = resolve(options.out);
  const base = await resolveBase(options.base);
  const adapters = await openAdapters(options.adapters);
  try {
    checkAdaptersAgree(adapters);
    // Extra tensors (modules_to_save heads, trained biases) are averaged at the end; a non-finite one is refused up front.
    for (const a of adapters) await a.checkExtrasFinite();
    const strategy = createStrategy(options.method, { weighting: options.weights === undefined ? 'uniform' : 'explicit', ...(options.aggregation !== undefined ? { aggregation: options.aggregation } : {}) });
    const view = await openBase(base);
    let output: { tmp: string; cleanup: string } | null = null;
    let failed = false;
    try {
      output = await prepareOutput(out, options.force === true);
      const { tmp } = output;
      const plan = planModules(adapters, view, base);
      const writeModel = strategy.updatesBase;
      // A single base is written as model.safetensors; a sharded one keeps its shard names and gets a new index.
      const modelFiles = base.index === undefined ? [join(tmp, 'model.safetensors')] : base.files.map((f) => join(tmp, basename(f)));
      const residualParts = writeModel ? join(tmp, '.residual-parts') : null;
      if (residualParts !== null) await mkdir(residualParts);
      const report = await runModules(options, strategy, adapters, view, plan, { model: writeModel ? modelFiles : null, adapter: join(tmp, 'adapter'), residualParts });
      if (residualParts !== null) {
        await writeResidualFile(join(tmp, RESIDUAL_FILE), report.residuals);
        await rm(residualParts, { recursive: true, force: true });
      }
      const baseHash = await hashBase(base, options.onWarning);
      if (writeModel) await writeShardIndex(tmp, base, view, report.modelBytes);
      // The written model is a loadable folder: the base's config and tokenizer files come along.
      if (writeModel && base.dir !== undefined) await copyModelFiles(base.dir, tmp);
      const full: AggregateReport = {
        method: strategy.name,
        aggregation: ruleLabel(strategy.aggregation),
        exactMethod: strategy.exact,
        base: base.file,
        baseDir: base.dir !== undefined ? resolve(base.dir) : null,
        baseHash,
        residualFile: writeModel ? RESIDUAL_FILE : null,
        adapters: [...options.adapters],
        weights: report.weights,
        outputDtype: options.dtype ?? 'same',
        modelWritten: writeModel,
        modules: report.modules,
        summary: {
          ...summarizeDeviations(report.metrics),
          maxExactnessRelativeError: Math.max(0, ...report.modules.map((m) => m.exactness.relativeError)),
          allWithinTolerance: report.modules.every((m) => m.exactness.withinTolerance),
          maxDowncastAbsError: Math.max(0, ...report.modules.map((m) => m.downcast?.maxAbsError ?? 0)),
        },
        seconds: (performance.now() - started) / 1000,
      };
      await writeFile(join(tmp, AGGREGATE_REPORT_FILE), `${JSON.stringify(full, null, 2)}\n`);
      const leftover = await commitOutput(tmp, out, options.force === true);
      if (leftover !== null) options.onWarning?.(`the previous output was replaced but could not be removed: it is in '${leftover}'`);
      return full;
    } catch (err) {
      failed = true;
      if (output !== null) await rm(output.cleanup, { recursive: true, force: true });
      throw err;
    } finally {
      // A failure to close must not hide the error that is on its way out.
      await closeReaders(view.readers).catch((closeErr: unknown) => {
        if (!failed) throw closeErr;
      });
    }
  } finally {
    await closeAll(adapters);
  }
}

/** One module's residual parked in a part file until residual.safetensors is assembled. */
interface ParkedResidual {
  readonly entry: ResidualEntry;
  readonly out: number;
  readonly in: number;
  readonly part: string;
}

interface ModulesOutcome {
  modules: ModuleReport[];
  metrics: ModuleAggregateMetrics[];
  weights: number[];
  /** Tensor bytes written to the model files (an index's total_size). */
  modelBytes: number;
  /** FedEx: the residual of every module whose base changed, in the order aggregated. */
  residuals: ParkedResidual[];
}

/**
 * The base folder's content hash (what `fedex export` checks its base against): null for a bare
 * .safetensors file, and, with a warning, for a folder that cannot be hashed (no config.json).
 */
async function hashBase(base: ResolvedBase, onWarning?: (message: string) => void): Promise<string | null> {
  if (base.dir === undefined) return null;
  try {
    return (await modelManifest(base.dir)).hash;
  } catch (err) {
    onWarning?.(`the base folder '${base.dir}' has no content hash (${(err as Error).message}); fedex export of this output will not check its base`);
    return null;
  }
}

/**
 * Writes residual.safetensors from the parked parts, one module in memory at a time: the tensor
 * names and metadata of a coordinator's step file (`<module>.residual_P` / `_Q`, float32, linear
 * orientation; `fedex.entries`, `fedex.round` 1). A FedEx round that changed no weight writes a file
 * with no tensors and no entries.
 */
async function writeResidualFile(path: string, residuals: readonly ParkedResidual[]): Promise<void> {
  const header = residuals.flatMap(({ entry, out, in: inF }) => (entry.form === 'dense'
    ? [{ name: tensorName(entry.module, ROLE_RESIDUAL_DENSE), dtype: 'F32' as const, shape: [out, inF] }]
    : [
      { name: tensorName(entry.module, ROLE_RESIDUAL_P), dtype: 'F32' as const, shape: [out, entry.innerDim] },
      { name: tensorName(entry.module, ROLE_RESIDUAL_Q), dtype: 'F32' as const, shape: [entry.innerDim, inF] },
    ])
  );
  const writer = await createSafetensorsWriter(path, header, { 'fedex.entries': JSON.stringify(residuals.map((r) => r.entry)), 'fedex.round': '1' });
  try {
    for (const { entry, part } of residuals) {
      if (entry.form === 'dense') {
        await writer.writeTensor(tensorName(entry.module, ROLE_RESIDUAL_DENSE), (await withSafetensors(part, (r) => r.readMatrix('D'))).data);
        await rm(part, { force: true });
        continue;
      }
      const { p, q } = await withSafetensors(part, async (r) => ({ p: await r.readMatrix('P'), q: await r.readMatrix('Q') }));
      await writer.writeTensor(tensorName(entry.module, ROLE_RESIDUAL_P), p.data);
      await writer.writeTensor(tensorName(entry.module, ROLE_RESIDUAL_Q), q.data);
      await rm(part, { force: true });
    }
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** Reads stored rows `rows` of a base tensor only (when the weight is neither updated nor written). */
async function readSampledRows(reader: SafetensorsReader, name: string, cols: number, rows: readonly number[]): Promise<Float32Array> {
  const packed = new Float32Array(rows.length * cols);
  for (const [i, t] of rows.entries()) packed.set(await reader.readRows(name, t, t + 1), i * cols);
  return packed;
}

/** An extra tensor's path without PEFT's `base_model.model.` prefix. */
function extraPath(key: string): string {
  return key.startsWith(PEFT_KEY_PREFIX) ? key.slice(PEFT_KEY_PREFIX.length) : key;
}

/**
 * A trained full tensor (modules_to_save, bias) of the global adapter: Σ w_i T_i with the clients'
 * normalised weights, accumulated in float64 one client at a time. Such tensors are trained whole,
 * so their mean is the aggregate (no factor product, no residual).
 */
export async function averageExtra(adapters: readonly Pick<PeftAdapterIndex, 'readExtra'>[], key: string, weights: readonly number[]): Promise<Float64Array> {
  let sum: Float64Array | null = null;
  for (const [i, a] of adapters.entries()) {
    const t = await a.readExtra(key);
    sum ??= new Float64Array(t.data.length);
    const w = weights[i];
    for (let j = 0; j < sum.length; j++) sum[j] += w * t.data[j];
  }
  return sum ?? new Float64Array(0);
}

/** A trained full tensor under a robust rule: rule_i(T_i) coordinate-wise (every client's copy in memory at once). */
async function robustExtra(adapters: readonly Pick<PeftAdapterIndex, 'readExtra'>[], key: string, rule: AggregationRule): Promise<Float64Array> {
  const copies = [];
  for (const a of adapters) {
    const t = await a.readExtra(key);
    copies.push({ shape: [1, t.data.length] as [number, number], data: t.data });
  }
  return Float64Array.from(robustCombine(copies, rule, `extra tensor '${key}'`).data);
}

async function runModules(
  options: AggregateFoldersOptions,
  strategy: AggregationStrategy,
  adapters: readonly PeftAdapterIndex[],
  view: BaseView,
  plan: ReadonlyMap<string, ModulePlan>,
  paths: { model: readonly string[] | null; adapter: string; residualParts: string | null },
): Promise<ModulesOutcome> {
  const toF32 = options.dtype === 'float32';
  const first = adapters[0];
  let writer: SafetensorsWriter | null = null;
  let adapterWriter: PeftAdapterWriter | null = null;
  const outcome: ModulesOutcome = { modules: [], metrics: [], weights: [], modelBytes: 0, residuals: [] };
  let done = 0;
  try {
    // Tensors sit in the adapter's module order (as PEFT lists them), written as each module is done.
    // Each module keeps its own rank and alpha (rank_pattern / alpha_pattern carried over in the config).
    adapterWriter = await createPeftAdapterWriter(paths.adapter, { config: { ...first.config },
      modules: [...plan.values()].map((p) => ({ modulePath: p.spec.name, rank: p.spec.rank, inFeatures: p.spec.inFeatures, outFeatures: p.spec.outFeatures, alpha: p.spec.alpha })),
      extraTensors: new Map(first.extraKeys.map((key) => [extraPath(key), { shape: first.extraShape(key) }])) }, { dtype: first.dtype === 'F16' || first.dtype === 'BF16' ? first.dtype : 'F32' });
    for (const [fileIndex, reader] of view.readers.entries()) {
      const entries = [...reader.tensors.values()].map((t) => ({
        name: t.name,
        shape: t.shape,
        dtype: toF32 && plan.has(t.name) ? ('F32' as const) : t.dtype,
      }));
      writer = paths.model === null ? null : await createSafetensorsWriter(paths.model[fileIndex], entries, reader.metadata);
      for (const info of reader.tensors.values()) {
        const p = plan.get(info.name);
        if (p === undefined) {
          if (writer !== null) await copyTensorBytes(reader, writer, info);
          continue;
        }
        const results: ClientModuleResult[] = [];
        for (const [client, a] of adapters.entries()) {
          const m = await a.readModule(p.spec.name);
          results.push({ client, clientId: a.dir, factors: { a: m.A, b: m.B }, ...(options.weights !== undefined ? { weight: options.weights[client] } : {}) });
        }
        const agg = strategy.aggregate(1, { spec: p.spec, factors: null }, results, []);
        if (agg === null) throw new AggregationInputError('NOTHING_USABLE', `module '${p.spec.name}': nothing usable to aggregate`);
        const global = agg.global.factors!;
        // A robust FedEx update is a dense D: the stored-weight updater applies it as D·I (exact, see denseAsFactored).
        const change = agg.baseUpdate;
        const dense = change?.form === 'dense' ? change : null;
        const baseUpdate = change === null ? null : change.form === 'factored' ? change : denseAsFactored(change.d, change.layout);
        const [nRows, cols] = [info.shape[0], info.shape[1]];
        const shape: [number, number] = [nRows, cols];
        const rows = exactnessSampleRows(nRows, options.checkRows === 0 ? Number.MAX_SAFE_INTEGER : options.checkRows ?? 64, done + 1);
        const storedDtype = toF32 ? 'F32' : info.dtype;
        let w0: CheckedMatrix;
        let w0New: CheckedMatrix;
        let downcast: DowncastReport | undefined;
        if (baseUpdate === null && (writer === null || storedDtype === info.dtype)) {
          // Not updated and written as stored (or not written): the bytes are copied, the check reads its rows.
          if (writer !== null) await copyTensorBytes(reader, writer, info);
          w0 = { shape, rows, data: await readSampledRows(reader, info.name, cols, rows) };
          w0New = w0;
        } else {
          const w = writer;
          const result = await options.updater.run(
            { shape, inDtype: info.dtype as StoredFloat, outDtype: storedDtype as StoredFloat, update: baseUpdate, sampleRows: rows },
            { read: (start, into) => reader.readRawRangeInto(info.name, start, into), write: async (bytes) => {
              if (w !== null) await w.writeRawPart(info.name, bytes);
            } },
          );
          w0 = { shape, rows, data: result.before };
          w0New = { shape, rows, data: result.after };
          downcast = result.downcast;
        }
        const exactness = checkExactness({
          w0,
          result: { kind: 'adapter', w0New, global },
          clients: results.map((r) => r.factors),
          weights: agg.metrics.weights,
          scale: agg.metrics.scale,
          layout: p.spec.layout,
          ...(strategy.aggregation !== undefined ? { rule: strategy.aggregation } : {}),
        }, rows);
        await adapterWriter.writeModule({ modulePath: p.spec.name, A: global.a, B: global.b });
        const update = change?.form === 'factored' ? change : null;
        if (paths.residualParts !== null && dense !== null) {
          // Parked as float32 D (out × in, the linear orientation): a dense entry, as a coordinator's dense step.
          const part = join(paths.residualParts, `module-${outcome.residuals.length}.safetensors`);
          await writeSafetensors(part, new Map([['D', { dtype: 'F32' as const, shape: dense.d.shape, data: dense.d.data }]]));
          outcome.residuals.push({ entry: { module: p.spec.name, form: 'dense', innerDim: 0, scale: 1 }, out: p.spec.outFeatures, in: p.spec.inFeatures, part });
        }
        if (paths.residualParts !== null && update !== null && update.p.shape[1] > 0) {
          // Parked as float32 (P out × inner, Q inner × in: the linear orientation, whatever the base layout).
          const part = join(paths.residualParts, `module-${outcome.residuals.length}.safetensors`);
          await writeSafetensors(part, new Map([
            ['P', { dtype: 'F32' as const, shape: update.p.shape, data: update.p.data }],
            ['Q', { dtype: 'F32' as const, shape: update.q.shape, data: update.q.data }],
          ]));
          outcome.residuals.push({ entry: { module: p.spec.name, form: 'factored', innerDim: update.p.shape[1], scale: update.scale }, out: p.spec.outFeatures, in: p.spec.inFeatures, part });
        }
        outcome.metrics.push(agg.metrics);
        outcome.weights = [...agg.metrics.weights];
        outcome.modules.push({
          module: p.spec.name,
          baseKey: info.name,
          layout: p.spec.layout,
          storedShape: info.shape,
          dtype: storedDtype,
          rank: p.spec.rank,
          scale: agg.metrics.scale,
          deviationNorm: agg.metrics.deviationNorm,
          idealUpdateNorm: agg.metrics.idealUpdateNorm,
          relativeDeviation: agg.metrics.relativeDeviation,
          residualRankBound: agg.metrics.residualRankBound,
          baseUpdated: baseUpdate !== null,
          exactness,
          ...(downcast !== undefined ? { downcast } : {}),
        });
        done++;
        options.onModule?.(done, plan.size, p.spec.name);
      }
      if (writer !== null) {
        await writer.close();
        writer = null;
        outcome.modelBytes += entries.reduce((sum, e) => sum + e.shape.reduce((a, b) => a * b, 1) * itemSize(e.dtype), 0);
      }
    }
    for (const key of first.extraKeys) {
      const rule = strategy.aggregation;
      await adapterWriter.writeExtra(extraPath(key), isRobustRule(rule) ? await robustExtra(adapters, key, rule!) : await averageExtra(adapters, key, outcome.weights));
    }
    await adapterWriter.close();
  } catch (err) {
    if (writer !== null) await writer.abort();
    if (adapterWriter !== null) await adapterWriter.abort();
    throw err;
  }
  return outcome;
}
