/**
 * The multi-run side of `fedex simulate`: `--sweep axis=v1,v2,…` parsing, and the terminal tables
 * of the seeds (mean ± sd per method, the FedEx − FedIT gap against the seeds' spread) and of a
 * sweep, all read from the comparison report (src/federation/simulation/comparisonReport.ts).
 */
import { formatStat, SWEEP_AXES, type ComparisonReport, type GapStat, type PointSummary, type SweepAxis, type SweepSpec } from '../../federation/simulation/comparisonReport.js';
import { usageError } from '../errors.js';
import { formatBytes, formatNumber, renderTable } from '../ui/table.js';

/** The largest value of each sweep axis (the limits of --clients and --local-steps). */
const SWEEP_MAX: Readonly<Record<SweepAxis, number>> = { 'local-steps': 1_000_000, clients: 64 };

/**
 * Parses `--sweep local-steps=5,20,50` (or `clients=2,4,8`): one axis, distinct positive integers.
 * `given` names the flags already set: a sweep over an axis replaces its flag, so both is an error.
 */
export function parseSweep(raw: string, given: { readonly clients: boolean; readonly localSteps: boolean }): SweepSpec {
  const at = raw.indexOf('=');
  const axis = raw.slice(0, at < 0 ? raw.length : at).trim();
  if (at < 0 || !(SWEEP_AXES as readonly string[]).includes(axis)) {
    throw usageError(`fedex simulate: --sweep must be AXIS=v1,v2,… with AXIS one of ${SWEEP_AXES.join(', ')} (one axis per run), got '${raw}'.`);
  }
  const a = axis as SweepAxis;
  const texts = raw.slice(at + 1).split(',').map((v) => v.trim());
  const values = texts.map(Number);
  const bad = texts.find((t, i) => t === '' || !Number.isInteger(values[i]) || values[i] < 1 || values[i] > SWEEP_MAX[a]);
  if (bad !== undefined) throw usageError(`fedex simulate: --sweep ${a} takes integers from 1 to ${SWEEP_MAX[a]}, got '${bad}' in '${raw}'.`);
  if (new Set(values).size !== values.length) throw usageError(`fedex simulate: --sweep ${a} lists a value twice: '${raw}'.`);
  if ((a === 'clients' && given.clients) || (a === 'local-steps' && given.localSteps)) {
    throw usageError(`fedex simulate: --sweep ${a}=… sets --${a} for each run; drop --${a}.`);
  }
  return { axis: a, values };
}

const num = (x: number): string => formatNumber(x, 4);
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
// A mean or sd of byte counts is not a whole number.
const bytes = (x: number): string => formatBytes(Math.round(x));

function gapLine(name: string, g: GapStat, f: (x: number) => string): string | null {
  if (g.mean === null) return null;
  const verdict = g.exceedsSpread === null ? 'spread unknown with one seed' : g.exceedsSpread ? `larger than the seeds' spread ${f(g.spread!)}` : `within the seeds' spread ${f(g.spread!)}`;
  return `  ${name}: ${formatStat(g, f)} (${verdict})`;
}

/** The mean ± sd table of one sweep point, and the FedEx − FedIT gap under it. */
export function seedsTable(p: PointSummary): string {
  const rows = p.methods.map((
    m,
  ) => [m.method, formatStat(m.evalLoss, num), formatStat(m.evalAccuracy, pct), formatStat(m.exactMatch, pct), formatStat(m.meanRelativeDeviation, (x) => formatNumber(x)), formatStat(m.bytesSent, bytes),
    formatStat(m.bytesReceived, bytes)]
  );
  const table = renderTable(['method', 'final eval loss', 'accuracy', 'exact match', 'mean rel. deviation', 'sent', 'received'], rows);
  if (p.gap === null) return table;
  const lines = [gapLine('eval loss', p.gap.evalLoss, num), gapLine('accuracy', p.gap.evalAccuracy, pct), gapLine('exact match', p.gap.exactMatch, pct)].filter((l): l is string => l !== null);
  return `${table}\nFedEx − FedIT, paired by seed (n = ${p.gap.evalLoss.n}):\n${lines.join('\n')}`;
}

/** The whole multi-run summary: a seeds table per sweep point, then the sweep table. */
export function comparisonText(report: ComparisonReport): string {
  const sweep = report.settings.sweep;
  const seeds = report.settings.seeds;
  const parts = report.summary.map((p) => `${sweep === null ? '' : `${sweep.axis} = ${p.sweepValue}: `}mean ± sd over seeds ${p.seeds.join(', ')} (${p.clients} clients × ${p.localSteps} local steps)\n${seedsTable(p)}`);
  if (sweep !== null) {
    const of = (p: PointSummary, method: string, f: (m: PointSummary['methods'][number]) => string): string => {
      const m = p.methods.find((x) => x.method === method);
      return m === undefined ? '–' : f(m);
    };
    const rows = report.summary.map((
      p,
    ) => [String(p.sweepValue), of(p, 'fedit', (m) => formatStat(m.meanRelativeDeviation, (x) => formatNumber(x))), of(p, 'fedex', (m) => formatStat(m.evalLoss, num)), of(p, 'fedit', (m) => formatStat(m.evalLoss, num)),
      p.gap === null ? '–' : formatStat(p.gap.evalLoss, num), p.gap === null ? '–' : formatStat(p.gap.exactMatch, pct)]
    );
    parts.push(`Sweep over ${sweep.axis} (${seeds.length} seed${seeds.length === 1 ? '' : 's'} each): deviation of plain averaging and the FedEx − FedIT gap\n${
      renderTable(
        [sweep.axis, 'FedIT rel. deviation', 'FedEx eval loss', 'FedIT eval loss', 'gap: eval loss', 'gap: exact match'],
        rows,
      )
    }`);
  }
  return parts.join('\n\n');
}
