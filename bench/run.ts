/**
 * `npm run bench [-- --smoke] [--only aggregation,federation,trainer,preauth,export] [--json file]
 * [--threads n] [--llama-layers n] [--work dir] [--export-modules n] [--export-mlp]
 * [--export-svd auto|torch|numpy]`: runs the benchmarks (all suites, or those `--only` names) and
 * prints their tables. Figures worth quoting are ratios between rows of the same run (these
 * machines are noisy); `--json` writes the rows for docs/benchmarks.md.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { aggregationBench } from './aggregation.js';
import { exportBench, type SvdChoice } from './export.js';
import { federationBench } from './federation.js';
import { preAuthBench } from './preAuth.js';
import { trainerBench } from './trainer.js';
import type { TrainerRow } from './trainer.js';
import type { BenchRow } from './aggregation.js';
import { renderTable } from '../src/cli/ui/table.js';

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    json: { type: 'string' },
    threads: { type: 'string', default: String(availableParallelism()) },
    'llama-layers': { type: 'string', default: '32' },
    work: { type: 'string', default: 'bench/results/work' },
    only: { type: 'string', default: 'aggregation,federation,trainer,preauth,export' },
    /** Export suite: how many 4096×4096 attention modules (q_proj, v_proj of layers 0, 1, …). */
    'export-modules': { type: 'string', default: '4' },
    /** Export suite: also one 11008×4096 MLP module. */
    'export-mlp': { type: 'boolean', default: false },
    /** Export suite: dense-SVD reference (auto: PyTorch when it loads, else numpy). */
    'export-svd': { type: 'string', default: 'auto' },
  },
});

const SUITES = ['aggregation', 'federation', 'trainer', 'preauth', 'export'] as const;
const only = new Set(values.only!.split(',').map((s) => s.trim()).filter((s) => s.length > 0));
const unknown = [...only].filter((s) => !(SUITES as readonly string[]).includes(s));
if (unknown.length > 0 || only.size === 0) {
  process.stderr.write(`bench: --only takes a comma-separated list of ${SUITES.join(', ')}; got '${values.only}'\n`);
  process.exit(2);
}
const exportModules = Number(values['export-modules']);
if (!Number.isInteger(exportModules) || exportModules < 1 || !['auto', 'torch', 'numpy'].includes(values['export-svd']!)) {
  process.stderr.write(`bench: --export-modules takes a positive integer and --export-svd auto, torch or numpy\n`);
  process.exit(2);
}

const rows: BenchRow[] = [];
const trainerRows: TrainerRow[] = [];
const log = (line: string): void => void process.stderr.write(`${line}\n`);
if (only.has('aggregation')) {
  rows.push(...await aggregationBench({
    smoke: values.smoke === true,
    threads: Number(values.threads),
    llamaLayers: Number(values['llama-layers']),
    workDir: values.work!,
    log,
  }));
}
if (only.has('federation')) rows.push(...await federationBench({ smoke: values.smoke === true, log }));
if (only.has('preauth')) rows.push(...await preAuthBench({ smoke: values.smoke === true, log }));
if (only.has('export')) {
  rows.push(...await exportBench({
    smoke: values.smoke === true,
    threads: Number(values.threads),
    modules: exportModules,
    mlp: values['export-mlp'] === true,
    svd: values['export-svd'] as SvdChoice,
    workDir: values.work!,
    log,
  }));
}
if (only.has('trainer')) trainerRows.push(...await trainerBench({ smoke: values.smoke === true, threads: Number(values.threads), workDir: values.work!, log }));

const fmt = (x: number): string => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '–');
const groups = new Map<string, BenchRow[]>();
for (const r of rows) groups.set(`${r.suite}|${r.case}`, [...(groups.get(`${r.suite}|${r.case}`) ?? []), r]);
const table = rows.map((r) => {
  const first = groups.get(`${r.suite}|${r.case}`)![0];
  const ratio = Number.isFinite(r.medianMs) && Number.isFinite(first.medianMs) ? `${(r.medianMs / first.medianMs).toFixed(2)}×` : '–';
  return [r.case, r.impl, fmt(r.medianMs), fmt(r.minMs), ratio, r.peakRssMiB === null ? '–' : fmt(r.peakRssMiB), r.note ?? ''];
});
process.stdout.write(`\nmachine: ${cpus()[0]?.model ?? '?'} × ${availableParallelism()}, node ${process.version}, threads ${values.threads}${values.smoke ? ', SMOKE (small shapes)' : ''}\n`);
if (rows.length > 0) process.stdout.write(`${renderTable(['case', 'implementation', 'median ms', 'min ms', 'vs first row', 'peak RSS MiB', 'note'], table)}\n`);
if (trainerRows.length > 0) {
  const tps = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(1));
  const times = (x: number | undefined): string => (x === undefined ? '–' : `${x.toFixed(2)}×`);
  const trainerTable = trainerRows.map((r) => [
    r.case,
    r.impl,
    r.ratio !== undefined ? times(r.ratio.median) : tps(r.tokensPerSecond?.median),
    r.ratio !== undefined ? times(r.ratio.best) : tps(r.tokensPerSecond?.best),
    fmt(r.medianMs),
    fmt(r.minMs),
    r.peakRssMiB === null ? '–' : fmt(r.peakRssMiB),
    r.note ?? '',
  ]);
  process.stdout.write(`\n${renderTable(['case', 'implementation', 'median tokens/s', 'best tokens/s', 'median step ms', 'min step ms', 'peak RSS MiB', 'note'], trainerTable)}\n`);
}
if (values.json !== undefined) {
  await mkdir(dirname(values.json), { recursive: true });
  await writeFile(values.json, `${JSON.stringify({ date: new Date().toISOString(), smoke: values.smoke, threads: Number(values.threads), suites: [...only], rows: [...rows, ...trainerRows] }, null, 2)}\n`);
}
