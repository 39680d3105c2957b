/**
 * Offline aggregation: one federated round over adapters saved as PEFT folders. Streams the base
 * checkpoint module by module (peak memory ≈ one module plus the adapters): every adapted weight is
 * read as a float32 master copy, the strategy's base update is applied through a ProductBackend,
 * the result is checked against a float64 recomputation and written back (same names, same dtype
 * unless float32 is asked for); every other tensor is copied byte for byte. The output folder
 * appears only when everything succeeded (written to a temporary sibling, renamed at the end).
 */
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { LoraFactors, LoraModuleSpec, Layout } from '../../core/lora.js';
import type { ProductBackend } from '../../core/product.js';
import { checkExactnessSampled } from '../../core/exactness.js';
import type { ExactnessReport } from '../../core/exactness.js';
import { createStrategy } from '../../core/strategies/registry.js';
import type { AggregationStrategy, ModuleAggregateMetrics, StrategyName, ClientModuleResult } from '../../core/strategies/types.js';
import { summarizeDeviations } from '../../core/deviation.js';
import type { DeviationSummary } from '../../core/deviation.js';
import { readPeftAdapter, writePeftAdapter } from '../../formats/peft.js';
import type { PeftAdapter } from '../../formats/peft.js';
import { openSafetensors } from '../../formats/safetensors.js';
import type { SafetensorsReader } from '../../formats/safetensors.js';
import { createSafetensorsWriter } from '../../formats/safetensorsWriter.js';
import { isFloatDType } from '../../formats/safetensorsHeader.js';
import type { SafetensorsDType } from '../../formats/safetensorsHeader.js';
import { checkBaseShape, inferLayout, resolveBaseKey } from '../../formats/adapterKeys.js';
import { readHfConfig } from '../../formats/hfConfig.js';
import { downcastError } from '../../formats/halfFloat.js';
import type { DowncastReport, StorageFloat } from '../../formats/halfFloat.js';
import { AggregationInputError } from './errors.js';

export interface AggregateFoldersOptions {
  readonly method: StrategyName;
  /** A model folder (model.safetensors, optional config.json) or a .safetensors file. */
  readonly base: string;
  /** PEFT adapter folders, one per client. */
  readonly adapters: readonly string[];
  /** Raw client weights (normalised); uniform when absent. */
  readonly weights?: readonly number[];
  readonly out: string;
  /** 'same' keeps each tensor's dtype; 'float32' writes adapted float weights as F32. */
  readonly dtype?: 'same' | 'float32';
  /** Replace an existing output folder. */
  readonly force?: boolean;
  readonly backend: ProductBackend;
  /** Stored rows per module checked against float64 (0 = all rows). Default 64. */
  readonly checkRows?: number;
  /** Called after each adapted module. */
  readonly onModule?: (done: number, total: number, module: string) => void;
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
  /** Rounding of the float32 master copy into the stored dtype (absent when stored as F32/F64 or unchanged). */
  readonly downcast?: DowncastReport;
}

export interface AggregateReport {
  readonly method: StrategyName;
  readonly exactMethod: boolean;
  readonly base: string;
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

interface ResolvedBase {
  file: string;
  modelType?: string;
}

async function resolveBase(path: string): Promise<ResolvedBase> {
  const info = await stat(path).catch(() => null);
  if (info === null) throw new AggregationInputError('BASE_NOT_FOUND', `base model '${path}' does not exist`);
  if (info.isFile()) return { file: path };
  const file = join(path, 'model.safetensors');
  if ((await stat(file).catch(() => null)) === null) {
    const sharded = (await stat(join(path, 'model.safetensors.index.json')).catch(() => null)) !== null;
    throw new AggregationInputError('BASE_NOT_FOUND', sharded
      ? `base model folder '${path}' is sharded (model.safetensors.index.json); sharded checkpoints are not supported yet: merge the shards into one model.safetensors`
      : `base model folder '${path}' has no model.safetensors`);
  }
  const hasConfig = (await stat(join(path, 'config.json')).catch(() => null)) !== null;
  return { file, modelType: hasConfig ? (await readHfConfig(join(path, 'config.json'))).modelType : undefined };
}

/** Checks that every adapter adapts the same modules with the same rank, alpha and rsLoRA flag. */
function checkAdaptersAgree(adapters: readonly PeftAdapter[]): void {
  const [first, ...rest] = adapters;
  const names = new Map(first.modules.map((m) => [m.modulePath, m]));
  for (const a of rest) {
    if (a.config.useRslora !== first.config.useRslora) {
      throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}' has use_rslora=${a.config.useRslora} but '${first.dir}' has ${first.config.useRslora}`);
    }
    const seen = new Set<string>();
    for (const m of a.modules) {
      const ref = names.get(m.modulePath);
      if (ref === undefined) throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}' adapts module '${m.modulePath}', which '${first.dir}' does not`);
      if (m.rank !== ref.rank) throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}': module '${m.modulePath}' has rank ${m.rank} but '${first.dir}' has rank ${ref.rank}`);
      if (m.alpha !== ref.alpha) throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}': module '${m.modulePath}' has lora_alpha ${m.alpha} but '${first.dir}' has ${ref.alpha}`);
      seen.add(m.modulePath);
    }
    const missing = [...names.keys()].filter((n) => !seen.has(n));
    if (missing.length > 0) throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}' lacks module '${missing[0]}'${missing.length > 1 ? ` and ${missing.length - 1} more` : ''} that '${first.dir}' adapts`);
  }
}

/** Checks raw client weights up front: finite, non-negative, not all zero; names the adapter folder. */
function checkWeights(weights: readonly number[], adapters: readonly string[]): void {
  if (weights.length !== adapters.length) throw new AggregationInputError('BAD_WEIGHTS', `${weights.length} weights given for ${adapters.length} adapters`);
  weights.forEach((w, i) => {
    if (!Number.isFinite(w) || w < 0) throw new AggregationInputError('BAD_WEIGHTS', `weight ${w} of adapter '${adapters[i]}' (client ${i}) must be a finite number ≥ 0`);
  });
  if (weights.every((w) => w === 0)) throw new AggregationInputError('BAD_WEIGHTS', `all ${weights.length} weights are zero`);
}

/**
 * Creates the temporary sibling of `out`. Returns it and what to remove on failure: the first
 * parent folder this call created (so a failed run leaves no new folders), else the sibling.
 */
async function prepareOutput(out: string, force: boolean): Promise<{ tmp: string; cleanup: string }> {
  const exists = (await stat(out).catch(() => null)) !== null;
  if (exists && !force) throw new AggregationInputError('OUTPUT_EXISTS', `output folder '${out}' already exists; pass --force to replace it`);
  const tmp = join(dirname(out), `.${basename(out)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  const first = await mkdir(tmp, { recursive: true });
  return { tmp, cleanup: first ?? tmp };
}

async function commitOutput(tmp: string, out: string): Promise<void> {
  const exists = (await stat(out).catch(() => null)) !== null;
  if (!exists) {
    await rename(tmp, out);
    return;
  }
  const old = `${out}.old-${randomBytes(4).toString('hex')}`;
  await rename(out, old);
  await rename(tmp, out);
  await rm(old, { recursive: true, force: true });
}

/** Runs one offline aggregation round and writes adapter/, model.safetensors (FedEx) and report.json. */
export async function aggregateFolders(options: AggregateFoldersOptions): Promise<AggregateReport> {
  const started = performance.now();
  if (options.adapters.length === 0) throw new AggregationInputError('NO_ADAPTERS', 'no adapter folders given');
  if (options.weights !== undefined) checkWeights(options.weights, options.adapters);
  const out = resolve(options.out);
  const base = await resolveBase(options.base);
  const adapters: PeftAdapter[] = [];
  for (const dir of options.adapters) adapters.push(await readPeftAdapter(dir));
  checkAdaptersAgree(adapters);
  const strategy = createStrategy(options.method, { weighting: options.weights === undefined ? 'uniform' : 'explicit' });

  const reader = await openSafetensors(base.file);
  let output: { tmp: string; cleanup: string } | null = null;
  try {
    output = await prepareOutput(out, options.force === true);
    const { tmp } = output;
    const plan = planModules(adapters, reader, base);
    const writeModel = strategy.updatesBase;
    const report = await runModules(options, strategy, adapters, reader, plan, writeModel ? join(tmp, 'model.safetensors') : null);
    await writePeftAdapter(join(tmp, 'adapter'), {
      config: { ...adapters[0].config },
      modules: report.globals.map((g) => ({ modulePath: g.modulePath, A: g.factors.a, B: g.factors.b })),
    }, { dtype: adapters[0].dtype === 'F16' || adapters[0].dtype === 'BF16' ? adapters[0].dtype : 'F32' });
    const full: AggregateReport = {
      method: strategy.name,
      exactMethod: strategy.exact,
      base: base.file,
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
    await writeFile(join(tmp, 'report.json'), `${JSON.stringify(full, null, 2)}\n`);
    await commitOutput(tmp, out);
    return full;
  } catch (err) {
    if (output !== null) await rm(output.cleanup, { recursive: true, force: true });
    throw err;
  } finally {
    await reader.close();
  }
}

interface ModulePlan {
  spec: LoraModuleSpec;
  baseKey: string;
  /** Index of the module in each adapter's module list. */
  index: number;
}

function planModules(adapters: readonly PeftAdapter[], reader: SafetensorsReader, base: ResolvedBase): Map<string, ModulePlan> {
  const keys = new Set(reader.tensors.keys());
  const first = adapters[0];
  const plan = new Map<string, ModulePlan>();
  first.modules.forEach((m, index) => {
    const baseKey = resolveBaseKey(m.modulePath, keys, { file: base.file });
    if (plan.has(baseKey)) throw new AggregationInputError('ADAPTER_MISMATCH', `modules '${plan.get(baseKey)!.spec.name}' and '${m.modulePath}' both map to base weight '${baseKey}'`);
    // The model type decides Conv1D vs Linear as PEFT does; fan_in_fan_out when there is no config.json.
    const layout = base.modelType !== undefined ? inferLayout(base.modelType, m.modulePath) : inferLayout(first.config.fanInFanOut);
    const info = reader.info(baseKey);
    checkBaseShape(info.shape, layout, m, { modulePath: m.modulePath, baseKey, file: base.file });
    if (!isFloatDType(info.dtype)) throw new AggregationInputError('BASE_DTYPE', `base weight '${baseKey}' in '${base.file}' has dtype ${info.dtype}; adapted weights must be floating point`);
    plan.set(baseKey, {
      baseKey,
      index,
      spec: { name: m.modulePath, inFeatures: m.A.shape[1], outFeatures: m.B.shape[0], rank: m.rank, alpha: m.alpha, useRslora: first.config.useRslora, layout },
    });
  });
  return plan;
}

interface ModulesOutcome {
  modules: ModuleReport[];
  metrics: ModuleAggregateMetrics[];
  globals: { modulePath: string; factors: LoraFactors }[];
  weights: number[];
}

async function runModules(
  options: AggregateFoldersOptions,
  strategy: AggregationStrategy,
  adapters: readonly PeftAdapter[],
  reader: SafetensorsReader,
  plan: ReadonlyMap<string, ModulePlan>,
  modelPath: string | null,
): Promise<ModulesOutcome> {
  const toF32 = options.dtype === 'float32';
  const entries = [...reader.tensors.values()].map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: toF32 && plan.has(t.name) ? ('F32' as const) : t.dtype,
  }));
  const writer = modelPath === null ? null : await createSafetensorsWriter(modelPath, entries, reader.metadata);
  const outcome: ModulesOutcome = { modules: [], metrics: [], globals: [], weights: [] };
  let done = 0;
  try {
    for (const info of reader.tensors.values()) {
      const p = plan.get(info.name);
      if (p === undefined) {
        if (writer !== null) await writer.writeTensor(info.name, await reader.readRaw(info.name));
        continue;
      }
      const results: ClientModuleResult[] = adapters.map((a, client) => ({
        client,
        clientId: a.dir,
        factors: { a: a.modules[p.index].A, b: a.modules[p.index].B },
        ...(options.weights !== undefined ? { weight: options.weights[client] } : {}),
      }));
      const agg = strategy.aggregate(1, { spec: p.spec, factors: null }, results, []);
      if (agg === null) throw new AggregationInputError('NOTHING_USABLE', `module '${p.spec.name}': nothing usable to aggregate`);
      const w0 = await reader.readMatrix(info.name);
      const updated = { shape: w0.shape, data: agg.baseUpdate === null ? w0.data : Float32Array.from(w0.data) };
      if (agg.baseUpdate !== null) await options.backend.addScaledProduct(updated, agg.baseUpdate.layout, agg.baseUpdate.p, agg.baseUpdate.q, agg.baseUpdate.scale);
      const exactness = checkExactnessSampled({
        w0, result: { kind: 'adapter', w0New: updated, global: agg.global.factors! }, clients: results.map((r) => r.factors), weights: agg.metrics.weights, scale: agg.metrics.scale, layout: p.spec.layout,
      }, options.checkRows === 0 ? Number.MAX_SAFE_INTEGER : options.checkRows ?? 64, done + 1);
      const storedDtype = toF32 ? 'F32' : info.dtype;
      let downcast: DowncastReport | undefined;
      if (writer !== null) {
        if (agg.baseUpdate !== null && (storedDtype === 'F16' || storedDtype === 'BF16')) downcast = downcastError(updated.data, storedDtype as StorageFloat);
        await writer.writeTensor(info.name, updated.data);
      }
      outcome.metrics.push(agg.metrics);
      outcome.globals.push({ modulePath: p.spec.name, factors: agg.global.factors! });
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
        baseUpdated: agg.baseUpdate !== null,
        exactness,
        ...(downcast !== undefined ? { downcast } : {}),
      });
      done++;
      options.onModule?.(done, plan.size, p.spec.name);
    }
    if (writer !== null) await writer.close();
  } catch (err) {
    if (writer !== null) await writer.abort();
    throw err;
  }
  // Modules are reported in the adapter's order, as PEFT lists them.
  const order = new Map([...plan.values()].map((p) => [p.spec.name, p.index]));
  outcome.globals.sort((a, b) => order.get(a.modulePath)! - order.get(b.modulePath)!);
  return outcome;
}
