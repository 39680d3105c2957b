/**
 * A `fedex aggregate --out` folder as an export source: one offline round, relative to the base it
 * was given, per module
 *
 *   W_out − W0 = s·P·Q (FedEx: the residual folded into the base, residual.safetensors) + s_g·B̄·Ā
 *
 * in the linear orientation, where s_g is the global adapter's own scaling (alpha/r, or alpha/√r
 * with rsLoRA, per module through rank_pattern / alpha_pattern). The layout is the global adapter's
 * (adapter/adapter_config.json and its tensors), each module's base orientation the one report.json
 * says the aggregation used. The base is the folder report.json recorded (`baseDir`, with its
 * content hash `baseHash`). An output written before residual.safetensors was kept is refused: its
 * model has the residual folded in, but the residual itself is lost.
 *
 * `openExportSource` is what `fedex export` opens: a run directory, a `fedex simulate` folder (as
 * `findRunDir` picks) or an aggregate output.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { UpdateTerm } from '../../core/lowRank.js';
import { STRATEGY_NAMES, type StrategyName } from '../../core/strategies/types.js';
import { openPeftAdapterIndex, PEFT_KEY_PREFIX, type PeftAdapterIndex } from '../../formats/peftIndex.js';
import { openSafetensors, type SafetensorsReader } from '../../formats/safetensors.js';
import { AGGREGATE_REPORT_FILE, RESIDUAL_FILE, type AggregateReport } from '../offline/aggregateFolders.js';
import { residualTensorShapes, type AdapterLayout, type ResidualEntry } from '../protocol/adapterTensors.js';
import { ExportError } from './errors.js';
import { findRunDir, isFile, openRunUpdate, residualTerm, type ExportSource } from './runUpdate.js';

/** The global adapter's folder inside an aggregate output. */
const ADAPTER_DIR = 'adapter';

/** What report.json holds that the export reads (fields added over time are optional). */
type AggregateReportOnDisk = Pick<AggregateReport, 'method' | 'exactMethod' | 'modules'> & Partial<Pick<AggregateReport, 'base' | 'baseDir' | 'baseHash' | 'residualFile'>>;

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() === true;
}

/** report.json of an aggregate output, or null when the file is not one (absent, not JSON, another report). */
async function readAggregateReport(dir: string): Promise<AggregateReportOnDisk | null> {
  const text = await readFile(join(dir, AGGREGATE_REPORT_FILE), 'utf8').catch(() => null);
  if (text === null) return null;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const r = json as Partial<AggregateReportOnDisk> | null;
  if (r === null || typeof r !== 'object' || !(STRATEGY_NAMES as readonly unknown[]).includes(r.method) || typeof r.exactMethod !== 'boolean' || !Array.isArray(r.modules)) return null;
  return r as AggregateReportOnDisk;
}

/**
 * True when `dir` is a `fedex aggregate --out` folder: a report.json written by `fedex aggregate`
 * and an adapter/ folder, and no state.json (a run directory wins).
 */
export async function isAggregateOutput(dir: string): Promise<boolean> {
  if (await isFile(join(dir, 'state.json'))) return false;
  if (!(await isDir(join(dir, ADAPTER_DIR)))) return false;
  return (await readAggregateReport(dir)) !== null;
}

/** What an aggregate output says besides its update. */
export interface AggregateDetails {
  /** The global adapter's trained full tensors (modules_to_save heads, biases; paths without `base_model.model.`), which an export does not carry. */
  readonly extraTensors: readonly string[];
  readonly taskType: string | null;
  /** The base as `fedex aggregate` was given it (report.json `base`). */
  readonly base: string | undefined;
  /** Whether report.json records the base folder (`baseDir`, null for a bare .safetensors file); false for an output written before it did. */
  readonly baseRecorded: boolean;
}

/** Opens an aggregate output's total update (the global adapter and, for FedEx, residual.safetensors; headers only). */
export async function openAggregateUpdate(path: string): Promise<ExportSource & { readonly aggregate: AggregateDetails }> {
  const dir = resolve(path);
  const report = await readAggregateReport(dir);
  if (report === null) throw new ExportError('EXPORT_SOURCE', `${dir} is not a fedex aggregate --out folder: it has no ${AGGREGATE_REPORT_FILE} written by fedex aggregate`);
  const method: StrategyName = report.method;
  const residualPath = join(dir, RESIDUAL_FILE);
  if (method === 'fedex' && !(await isFile(residualPath))) {
    throw new ExportError('EXPORT_SOURCE',
      `${dir} is a fedex aggregate output without ${RESIDUAL_FILE} (written by a version before it was kept): its model has the residual folded in, `
        + `but the residual itself is not there, so no adapter relative to the input base can be rebuilt; re-run \`fedex aggregate\` with this version (same --base, --adapters and --weights) and export that output`);
  }
  let index: PeftAdapterIndex | null = null;
  let residual: SafetensorsReader | null = null;
  const close = async (): Promise<void> => {
    await Promise.all([index?.close(), residual?.close()]);
  };
  try {
    index = await openPeftAdapterIndex(join(dir, ADAPTER_DIR));
    const adapter = index;
    // Each module's base orientation as the aggregation applied it (report.json), else the adapter's fan_in_fan_out.
    const reported = new Map(report.modules.map((m) => [m.module, m.layout]));
    for (const m of report.modules) {
      if (!adapter.modules.some((a) => a.modulePath === m.module)) throw new ExportError('EXPORT_SOURCE', `${dir}: report.json lists module ${m.module}, which the global adapter in ${ADAPTER_DIR}/ does not hold`);
    }
    const layout: AdapterLayout = adapter.modules.map((m) => {
      const orientation = reported.get(m.modulePath);
      return { module: m.modulePath, in: m.inFeatures, out: m.outFeatures, rank: m.rank, fanInFanOut: orientation !== undefined ? orientation === 'conv1d' : adapter.config.fanInFanOut };
    });
    const byModule = new Map(adapter.modules.map((m) => [m.modulePath, m]));
    const entries = new Map<string, ResidualEntry>();
    if (method === 'fedex') {
      residual = await openSafetensors(residualPath);
      const list = JSON.parse(residual.metadata['fedex.entries'] ?? '[]') as ResidualEntry[];
      let shapes: Map<string, readonly number[]>;
      try {
        shapes = residualTensorShapes(list, layout);
      } catch (err) {
        throw new ExportError('EXPORT_SOURCE', `${residualPath}: ${(err as Error).message}`, { cause: err });
      }
      for (const [name, shape] of shapes) {
        const info = residual.tensors.get(name);
        if (info === undefined || info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
          throw new ExportError('EXPORT_SOURCE', `${residualPath}: tensor ${name} ${info === undefined ? 'is missing' : `has shape [${info.shape.join(', ')}]`}, its entry and the adapter need [${shape.join(', ')}]`);
        }
      }
      for (const e of list) entries.set(e.module, e);
    }
    const reader = residual;
    const targets = adapter.config.targetModules;
    return {
      kind: 'aggregate',
      runDir: dir,
      method,
      layout,
      targetModules: targets === null ? [] : typeof targets === 'string' ? [targets] : targets,
      baseHash: report.baseHash ?? null,
      // undefined, not null: null means the synthetic model; a bare .safetensors base records no folder.
      modelDir: report.baseDir ?? undefined,
      roundsCompleted: 1,
      rounds: 1,
      round: 1,
      finished: true,
      steps: method === 'fedex' ? 1 : 0,
      aggregate: {
        extraTensors: adapter.extraKeys.map((k) => (k.startsWith(PEFT_KEY_PREFIX) ? k.slice(PEFT_KEY_PREFIX.length) : k)),
        taskType: adapter.config.taskType,
        base: report.base,
        baseRecorded: report.baseDir !== undefined,
      },
      async terms(m) {
        const terms: UpdateTerm[] = [];
        const e = entries.get(m.module);
        if (e !== undefined && reader !== null) terms.push(await residualTerm(reader, e));
        const g = await adapter.readModule(m.module);
        // The global adapter with its own scaling (alpha/r or rsLoRA, per module).
        terms.push({ kind: 'factored', p: g.B, q: g.A, scale: byModule.get(m.module)!.scaling });
        return terms;
      },
      close,
    };
  } catch (err) {
    await close();
    if (err instanceof ExportError) throw err;
    throw new ExportError('EXPORT_SOURCE', `aggregate output ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

export interface OpenExportSourceOptions {
  /** Which run of a simulate folder; for a run directory or an aggregate output, the method it must hold. */
  readonly method?: StrategyName;
  /** The base given with --base (a merged export of an aggregate output over a bare .safetensors file needs it). */
  readonly base?: string;
  /** Whether a merged model is wanted. */
  readonly merged: boolean;
  readonly onWarning?: (message: string) => void;
}

/**
 * What `fedex export <source>` exports: a run directory (state.json), a `fedex aggregate --out`
 * folder (report.json + adapter/), or a `fedex simulate --out` folder (one of its runs, as
 * `findRunDir` picks and says).
 */
export async function openExportSource(source: string, options: OpenExportSourceOptions): Promise<ExportSource> {
  const dir = resolve(source);
  if (!(await isAggregateOutput(dir))) {
    const found = await findRunDir(source, options.method);
    if (found.note !== undefined) options.onWarning?.(found.note);
    return openRunUpdate(found.dir);
  }
  const run = await openAggregateUpdate(dir);
  try {
    if (options.method !== undefined && options.method !== run.method) throw new ExportError('EXPORT_SOURCE', `aggregate output ${dir} holds a ${run.method} aggregation, not ${options.method}`);
    const details = run.aggregate;
    if (options.merged && options.base === undefined && run.modelDir === undefined) {
      throw new ExportError('EXPORT_BASE', details.baseRecorded
        ? `aggregate output ${dir} was made from a bare .safetensors file (${
          details.base ?? 'see its report.json'
        }), not a model folder, so it records no base folder: a merged model needs the original base model folder (config.json and weights); give it with --base`
        : `aggregate output ${dir} does not record its base model folder (written by an older fedex aggregate); give the original base model folder with --base`);
    }
    if (details.extraTensors.length > 0) {
      const [first, ...rest] = details.extraTensors;
      options.onWarning?.(
        `the global adapter in ${join(dir, ADAPTER_DIR)} also holds trained full tensors (${first}${rest.length > 0 ? ` and ${rest.length} more` : ''}; task_type ${
          details.taskType ?? 'none'
        }), which the export does not carry: the exported adapter holds the LoRA update only`,
      );
    }
    return run;
  } catch (err) {
    await run.close();
    throw err;
  }
}
