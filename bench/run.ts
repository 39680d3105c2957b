/**
 * `npm run bench [-- --smoke] [--json file] [--threads n] [--llama-layers n] [--work dir]`:
 * runs the benchmarks and prints one table. Figures worth quoting are ratios between rows of the
 * same run (these machines are noisy); `--json` writes the rows for docs/benchmarks.md.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { aggregationBench } from './aggregation.js';
import { federationBench } from './federation.js';
import type { BenchRow } from './aggregation.js';
import { renderTable } from '../src/cli/ui/table.js';

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    json: { type: 'string' },
    threads: { type: 'string', default: String(availableParallelism()) },
    'llama-layers': { type: 'string', default: '32' },
    work: { type: 'string', default: 'bench/results/work' },
  },
});

const rows: BenchRow[] = [];
const log = (line: string): void => void process.stderr.write(`${line}\n`);
rows.push(...await aggregationBench({
  smoke: values.smoke === true,
  threads: Number(values.threads),
  llamaLayers: Number(values['llama-layers']),
  workDir: values.work!,
  log,
}));
rows.push(...await federationBench({ smoke: values.smoke === true, log }));

const fmt = (x: number): string => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '–');
const groups = new Map<string, BenchRow[]>();
for (const r of rows) groups.set(`${r.suite}|${r.case}`, [...(groups.get(`${r.suite}|${r.case}`) ?? []), r]);
const table = rows.map((r) => {
  const first = groups.get(`${r.suite}|${r.case}`)![0];
  const ratio = Number.isFinite(r.medianMs) && Number.isFinite(first.medianMs) ? `${(r.medianMs / first.medianMs).toFixed(2)}×` : '–';
  return [r.case, r.impl, fmt(r.medianMs), fmt(r.minMs), ratio, r.peakRssMiB === null ? '–' : fmt(r.peakRssMiB), r.note ?? ''];
});
process.stdout.write(`\nmachine: ${cpus()[0]?.model ?? '?'} × ${availableParallelism()}, node ${process.version}, threads ${values.threads}${values.smoke ? ', SMOKE (small shapes)' : ''}\n`);
process.stdout.write(`${renderTable(['case', 'implementation', 'median ms', 'min ms', 'vs first row', 'peak RSS MiB', 'note'], table)}\n`);
if (values.json !== undefined) {
  await mkdir(dirname(values.json), { recursive: true });
  await writeFile(values.json, `${JSON.stringify({ date: new Date().toISOString(), smoke: values.smoke, threads: Number(values.threads), rows }, null, 2)}\n`);
}
