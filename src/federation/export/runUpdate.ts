/**
 * The total update of a federation, read from its run directory (a `fedex host` run, or one method
 * of a `fedex simulate` output): per module, relative to the original base W0,
 *
 *   W_final − W0 = Σ_t s_t·P_t·Q_t (every base step, factored or dense, as it was folded in) + s·B̄·Ā
 *
 * in the linear orientation (out × in, whatever the base layout). The steps are the ones the run
 * persisted (residuals/step-v*.safetensors), read module by module, so one module's terms are in
 * memory at a time; the dense matrix is never formed where the steps were factored.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loraScaling } from '../../core/lora.js';
import { sbProduct } from '../../core/loraSb.js';
import type { UpdateTerm } from '../../core/lowRank.js';
import type { StrategyName } from '../../core/strategies/types.js';
import { openSafetensors, type SafetensorsReader } from '../../formats/safetensors.js';
import { readRunState, stepFile } from '../coordinator/store.js';
import { ROLE_RESIDUAL_DENSE, ROLE_RESIDUAL_P, ROLE_RESIDUAL_Q, tensorName, type AdapterLayout, type ModuleLayout, type ResidualEntry } from '../protocol/adapterTensors.js';
import { readModelSource } from '../shared/modelSource.js';
import { ExportError } from './errors.js';

/** What `fedex export` exports: the total update per module relative to the original base, and where it comes from. */
export interface ExportSource {
  /** `run`: a coordinator run directory; `aggregate`: a `fedex aggregate --out` folder. */
  readonly kind: 'run' | 'aggregate';
  /** The folder read. */
  readonly runDir: string;
  readonly method: StrategyName;
  readonly layout: AdapterLayout;
  /** target_modules of the federation (names, `all-linear` or a regex), for the adapter config. */
  readonly targetModules: readonly string[];
  /** Content hash the original base must have (null: not recorded, not checked). */
  readonly baseHash: string | null;
  /** The recorded base model folder (null: the synthetic model; undefined: none recorded). */
  readonly modelDir: string | null | undefined;
  readonly roundsCompleted: number;
  readonly rounds: number;
  /** Last closed round (a run that has not finished is exported as of it). */
  readonly round: number;
  readonly finished: boolean;
  /** Base steps folded in before the global adapter. */
  readonly steps: number;
  /** The module's terms: every base step in order, then the global adapter. */
  terms(m: ModuleLayout): Promise<UpdateTerm[]>;
  close(): Promise<void>;
}

/** A base step's residual for one module (an entry of a step file's `fedex.entries`) as an update term. */
export async function residualTerm(reader: SafetensorsReader, e: ResidualEntry): Promise<UpdateTerm> {
  return e.form === 'factored'
    ? { kind: 'factored', p: await reader.readMatrix(tensorName(e.module, ROLE_RESIDUAL_P)), q: await reader.readMatrix(tensorName(e.module, ROLE_RESIDUAL_Q)), scale: e.scale }
    : { kind: 'dense', d: await reader.readMatrix(tensorName(e.module, ROLE_RESIDUAL_DENSE)), scale: e.scale };
}

/** True when `path` is a file. */
export async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() === true;
}

/** The run folders (labels) a multi-run `fedex simulate --out` lists in its report.json, or none. */
async function comparisonRuns(dir: string): Promise<string[]> {
  try {
    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as { format?: unknown; runs?: { label?: unknown }[] };
    if (report.format !== 'fedex-simulation-comparison' || !Array.isArray(report.runs)) return [];
    return report.runs.flatMap((r) => (typeof r.label === 'string' ? [r.label] : []));
  } catch {
    return [];
  }
}

/**
 * The run directory `path` names: itself when it holds state.json, else one of `<path>/runs/<method>/`
 * (a `fedex simulate` output): `method` when given, else `fedex` when it is there, else the only one.
 * Returns the directory and a note when a method was picked for the user.
 */
export async function findRunDir(path: string, method?: StrategyName): Promise<{ dir: string; note?: string }> {
  const dir = resolve(path);
  if (await isFile(join(dir, 'state.json'))) {
    if (method !== undefined) {
      const state = await readRunState(dir);
      if (state.plan.method !== method) throw new ExportError('EXPORT_SOURCE', `run directory ${dir} holds a ${state.plan.method} federation, not ${method}`);
    }
    return { dir };
  }
  const runs = join(dir, 'runs');
  const names = (await readdir(runs).catch(() => [] as string[])).sort();
  const found: string[] = [];
  for (const n of names) if (await isFile(join(runs, n, 'state.json'))) found.push(n);
  if (found.length === 0) {
    const runsOf = await comparisonRuns(dir);
    if (runsOf.length > 0) {
      throw new ExportError('EXPORT_SOURCE', `${dir} holds ${runsOf.length} simulations (fedex simulate --seeds/--sweep), each a simulate folder of its own: export one of them, e.g. ${join(dir, runsOf[0])} (runs: ${runsOf.join(', ')})`);
    }
    throw new ExportError('EXPORT_SOURCE',
      `${dir} is not a federation run: it has no state.json (a fedex host --out folder), no runs/<method>/state.json (a fedex simulate --out folder), and no report.json with adapter/ (a fedex aggregate --out folder)`);
  }
  if (method !== undefined) {
    if (!found.includes(method)) throw new ExportError('EXPORT_SOURCE', `${dir} has no ${method} run (it has ${found.join(', ')})`);
    return { dir: join(runs, method) };
  }
  const pick = found.includes('fedex') ? 'fedex' : found.length === 1 ? found[0] : undefined;
  if (pick === undefined) throw new ExportError('EXPORT_SOURCE', `${dir} holds runs of ${found.join(', ')}; choose one with --method`);
  return { dir: join(runs, pick), ...(found.length > 1 ? { note: `exporting the ${pick} run of ${dir} (it also holds ${found.filter((n) => n !== pick).join(', ')}; --method chooses)` } : {}) };
}

/** Opens a run directory's total update (the global adapter file and every step file, headers only). */
export async function openRunUpdate(runDir: string): Promise<ExportSource> {
  const state = await readRunState(runDir);
  const modelDir = await readModelSource(runDir);
  const readers: SafetensorsReader[] = [];
  try {
    const global = await openSafetensors(join(runDir, state.globalFile));
    readers.push(global);
    const steps: { reader: SafetensorsReader; entries: Map<string, ResidualEntry> }[] = [];
    for (let revision = 1; revision <= state.revision; revision++) {
      const reader = await openSafetensors(stepFile(runDir, revision));
      readers.push(reader);
      const entries = JSON.parse(reader.metadata['fedex.entries'] ?? '[]') as ResidualEntry[];
      steps.push({ reader, entries: new Map(entries.map((e) => [e.module, e])) });
    }
    const { lora } = state.plan;
    return {
      kind: 'run',
      runDir,
      method: state.plan.method,
      layout: state.plan.layout,
      targetModules: lora.targetModules,
      baseHash: state.plan.baseModelHash,
      modelDir,
      roundsCompleted: state.roundsCompleted,
      rounds: state.plan.rounds,
      round: state.round,
      finished: state.done !== null,
      steps: steps.length,
      async terms(m) {
        const terms: UpdateTerm[] = [];
        for (const { reader, entries } of steps) {
          const e = entries.get(m.module);
          if (e !== undefined) terms.push(await residualTerm(reader, e));
        }
        // Fed-SB's global file holds A, B and R (lora_R): its update is s·(B·R)·A, a standard adapter (A, B·R).
        const b = await global.readMatrix(`${m.module}.lora_B`);
        const p = state.plan.method === 'fedsb' ? sbProduct(b, await global.readMatrix(`${m.module}.lora_R`)) : b;
        terms.push({ kind: 'factored', p, q: await global.readMatrix(`${m.module}.lora_A`), scale: loraScaling(lora.alpha, m.rank, lora.rsLora) });
        return terms;
      },
      close: async () => {
        await Promise.all(readers.map((r) => r.close()));
      },
    };
  } catch (err) {
    await Promise.all(readers.map((r) => r.close()));
    if (err instanceof ExportError) throw err;
    throw new ExportError('EXPORT_SOURCE', `run directory ${runDir}: ${(err as Error).message}`, { cause: err });
  }
}
