/**
 * The extension's side of `fedex export` (no vscode here; `FedEx: Export Adapter…` in
 * commands/adapterCommands.ts only asks and shows): recognising a federation's output folder,
 * planning the command (its output folder and arguments), and turning its JSON report, or its
 * failure, into one sentence for a notification.
 *
 * A FedEx-LoRA federation's result is the base with every round's residual folded in plus the
 * global adapter, so the global adapter folder alone is not it: a federation is exported by the CLI,
 * never copied.
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ExportKind, ExportReport } from '../federation/export/exportFederation.js';
import { exportArgs, METHODS } from './config/cliArgs.js';
import type { CliResult } from './process/cliProcess.js';
import { exitText } from './process/federationRuns.js';

/**
 * A federation run folder as `fedex export` reads it: `run`, a folder with state.json (`fedex host
 * --out`, or one `runs/<method>` of a simulation); `simulation`, a `fedex simulate --out` folder
 * with `runs/<method>/state.json` for each method it ran (in the order fedex, fedit, ffa, flora, fedsb).
 */
export type FederationRun =
  | { readonly kind: 'run'; readonly dir: string; readonly method: string | null }
  | { readonly kind: 'simulation'; readonly dir: string; readonly methods: readonly string[] };

const isFile = (path: string): Promise<boolean> => stat(path).then((s) => s.isFile(), () => false);

/** The method a run folder's state.json records (null when it cannot be read). */
async function runMethod(dir: string): Promise<string | null> {
  try {
    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { plan?: { method?: unknown } };
    return typeof state.plan?.method === 'string' ? state.plan.method : null;
  } catch {
    return null;
  }
}

/** The method of a `fedex aggregate --out` folder (report.json with its method and adapters, and adapter/), or null. */
async function aggregateMethod(dir: string): Promise<string | null> {
  if (!(await stat(join(dir, 'adapter')).then((s) => s.isDirectory(), () => false))) return null;
  try {
    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as { method?: unknown; adapters?: unknown };
    return typeof report.method === 'string' && Array.isArray(report.adapters) ? report.method : null;
  } catch {
    return null;
  }
}

/**
 * What `dir` holds for `fedex export`, or null when it is not a federation run (e.g. a `fedex train`
 * adapter folder). A `fedex aggregate --out` folder counts as a run (one offline round).
 */
export async function findFederationRun(dir: string): Promise<FederationRun | null> {
  if (await isFile(join(dir, 'state.json'))) return { kind: 'run', dir, method: await runMethod(dir) };
  const aggregated = await aggregateMethod(dir);
  if (aggregated !== null) return { kind: 'run', dir, method: aggregated };
  const names = await readdir(join(dir, 'runs')).catch(() => [] as string[]);
  const methods: string[] = [];
  for (const m of METHODS) if (names.includes(m) && (await isFile(join(dir, 'runs', m, 'state.json')))) methods.push(m);
  return methods.length > 0 ? { kind: 'simulation', dir, methods } : null;
}

/** The export to run: its output folder (new, in the folder the user picked) and `fedex export` arguments. */
export interface ExportPlan {
  readonly out: string;
  readonly method: string | null;
  readonly args: string[];
}

/**
 * Plans `fedex export` of `run` into a new folder `fedex-export-<method>-<stamp>` of `parent`. A
 * simulation needs `method` (one of its runs) unless it ran only one; a run folder is exported as is.
 */
export function exportPlan(run: FederationRun, o: { as: ExportKind; parent: string; device: string; stamp: string; method?: string }): ExportPlan {
  let method: string | null = run.kind === 'run' ? run.method : null;
  let methodArg: string | undefined;
  if (run.kind === 'simulation') {
    methodArg = o.method ?? (run.methods.length === 1 ? run.methods[0] : undefined);
    if (methodArg === undefined) throw new Error(`${run.dir} holds runs of ${run.methods.join(', ')}: choose one`);
    if (!run.methods.includes(methodArg)) throw new Error(`${run.dir} has no ${methodArg} run (it has ${run.methods.join(', ')})`);
    method = methodArg;
  } else if (o.method !== undefined && run.method !== null && o.method !== run.method) {
    throw new Error(`${run.dir} holds a ${run.method} federation, not ${o.method}`);
  }
  const out = join(o.parent, `fedex-export-${method ?? 'run'}-${o.stamp}`);
  return { out, method, args: exportArgs({ source: run.dir, out, as: o.as, ...(methodArg !== undefined ? { method: methodArg } : {}), device: o.device }) };
}

/** One notification's worth about a finished export, and the folder its Reveal action shows. */
export interface ExportSummary {
  readonly text: string;
  readonly reveal: string;
}

const sci = (x: number): string => (x === 0 ? '0' : x.toExponential(1));

/** One paragraph about an export from the JSON `fedex export --json` prints; null when it cannot be read. */
export function summarizeExportReport(json: string): ExportSummary | null {
  let r: Partial<ExportReport>;
  try {
    r = JSON.parse(json) as Partial<ExportReport>;
  } catch {
    return null;
  }
  if (r === null || typeof r !== 'object' || r.format !== 'fedex-export' || r.summary === undefined || r.source === undefined) return null;
  const { source, summary } = r;
  const modules = Array.isArray(r.modules) ? r.modules : [];
  const parts = [`${source.method} federation exported (${source.roundsCompleted}/${source.rounds} rounds${source.finished ? '' : ', unfinished'}).`];
  if (typeof r.adapterDir === 'string') {
    const ranks = modules.map((m) => m.rank);
    const rankText = ranks.length === 0 ? '' : Math.min(...ranks) === Math.max(...ranks) ? `, rank ${ranks[0]}` : `, ranks ${Math.min(...ranks)}–${Math.max(...ranks)}`;
    const exactness = summary.exactModules === summary.modules
      ? `exact in every module (${summary.modules} modules${rankText})`
      : `${summary.modules - summary.exactModules} of ${summary.modules} modules truncated, max relative error ${sci(summary.maxTruncationError)}${rankText}`;
    const base = typeof r.base === 'string' ? `on the original base ${r.base}` : 'the run trained the synthetic model: no base folder to load it with';
    parts.push(`Adapter (PEFT, ${base}): ${r.adapterDir}, ${exactness}.`);
  }
  if (typeof r.modelDir === 'string') parts.push(`Merged model: ${r.modelDir}.`);
  const reveal = typeof r.adapterDir === 'string' ? r.adapterDir : typeof r.modelDir === 'string' ? r.modelDir : null;
  if (reveal === null) return null;
  return { text: parts.join(' '), reveal };
}

/** Why a `fedex export` run failed: the CLI's error line (its last stderr line), else how it ended. */
export function exportFailureText(result: CliResult): string {
  if (result.exit.error !== undefined) return exitText(result.exit);
  const last = [...result.stderr].reverse().find((l) => l.trim() !== '');
  return last !== undefined ? last.trim().replace(/^fedex export: /, '') : exitText(result.exit);
}

/**
 * After a cancelled export: removes what the killed CLI left next to `out` (it writes to a hidden
 * sibling `.<name>.partial-…` and renames it into place only at the end). `out` is a fresh
 * `fedex-export-…` folder, so nothing else carries that prefix. Returns how many were removed.
 */
export async function removePartialExport(out: string): Promise<number> {
  const prefix = `.${basename(out)}.partial-`;
  const names = (await readdir(dirname(out)).catch(() => [] as string[])).filter((n) => n.startsWith(prefix));
  await Promise.all(names.map((n) => rm(join(dirname(out), n), { recursive: true, force: true })));
  return names.length;
}
