/**
 * report.html of a multi-run simulation: the seeds' mean ± sd table per sweep point, the FedEx −
 * FedIT gap against the seeds' spread, the sweep table and charts (deviation of plain averaging and
 * the gap against the swept value), and every run with a link to its own report.html. Self-contained
 * like the single-run page (reportHtml.ts): tables need no script; Chart.js, inlined, draws the
 * charts from the report embedded as JSON.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../formats/atomicFile.js';
import { formatStat, type ComparisonReport, type GapStat, type PointSummary, type Stat } from './comparisonReport.js';
import { escapeHtml, findChartJs, reportPageHead, scriptJson } from './reportHtml.js';

function fmt(x: number): string {
  const a = Math.abs(x);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? x.toExponential(2) : x.toPrecision(4);
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

function bytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** A cell's text, escaped (table() takes markup so the runs table can hold links). */
const cell = (s: Stat, f: (x: number) => string): string => escapeHtml(formatStat(s, f));

function gapRow(name: string, g: GapStat, f: (x: number) => string): string[] {
  const verdict = g.exceedsSpread === null ? '–' : g.exceedsSpread ? 'yes' : 'no';
  return [escapeHtml(name), cell(g, f), escapeHtml(g.spread === null ? '–' : f(g.spread)), verdict];
}

function pointSection(p: PointSummary, report: ComparisonReport): string {
  const axis = report.settings.sweep?.axis;
  const title = axis === undefined ? '' : `<h3>${escapeHtml(axis)} = ${escapeHtml(String(p.sweepValue))}</h3>\n`;
  const methods = table(['method', 'final eval loss', 'accuracy', 'exact match', 'mean rel. deviation', 'sent', 'received', 'time (s)'],
    p.methods.map((
      m,
    ) => [escapeHtml(m.method), cell(m.evalLoss, fmt), cell(m.evalAccuracy, pct), cell(m.exactMatch, pct), cell(m.meanRelativeDeviation, fmt), cell(m.bytesSent, bytes), cell(m.bytesReceived, bytes), cell(m.seconds, (x) => x.toFixed(1))]));
  const gap = p.gap === null ? '' : `<p>FedEx − FedIT, paired by seed (n = ${p.gap.evalLoss.n}), against the seeds' spread (the larger of the two methods' standard deviations):</p>\n${
    table(
      ['figure', 'FedEx − FedIT', 'spread', '|gap| > spread'],
      [gapRow('final eval loss (negative: FedEx better)', p.gap.evalLoss, fmt), gapRow('accuracy (positive: FedEx better)', p.gap.evalAccuracy, pct), gapRow('exact match (positive: FedEx better)', p.gap.exactMatch, pct)],
    )
  }`;
  return `${title}<p class="note">Seeds ${escapeHtml(p.seeds.join(', '))}; ${p.clients} clients × ${p.localSteps} local steps.</p>\n${methods}\n${gap}`;
}

function sweepSection(report: ComparisonReport): string {
  const sweep = report.settings.sweep;
  if (sweep === null) return '';
  const stat = (p: PointSummary, method: string, pick: (m: PointSummary['methods'][number]) => Stat, f: (x: number) => string): string => {
    const m = p.methods.find((x) => x.method === method);
    return m === undefined ? '–' : cell(pick(m), f);
  };
  const rows = report.summary.map((
    p,
  ) => [escapeHtml(String(p.sweepValue)), stat(p, 'fedit', (m) => m.meanRelativeDeviation, fmt), stat(p, 'fedex', (m) => m.evalLoss, fmt), stat(p, 'fedit', (m) => m.evalLoss, fmt), p.gap === null ? '–' : cell(p.gap.evalLoss, fmt),
    p.gap === null ? '–' : cell(p.gap.exactMatch, pct)]
  );
  return `<h2>Sweep: ${escapeHtml(sweep.axis)}</h2>
<p class="note">How the deviation of plain averaging (FedIT's mean relative deviation ‖s·ΔR‖/‖s·Σ wᵢBᵢAᵢ‖ over rounds and modules) and the FedEx − FedIT gap change with ${escapeHtml(sweep.axis)}; mean ± sd over the seeds.</p>
${table([sweep.axis, 'FedIT rel. deviation', 'FedEx eval loss', 'FedIT eval loss', 'gap: eval loss', 'gap: exact match'], rows)}
<figure><figcaption>Relative deviation of plain averaging against ${escapeHtml(sweep.axis)} (mean ± sd over seeds)</figcaption><canvas id="chart-sweep-dev"></canvas></figure>
<figure><figcaption>FedEx − FedIT final eval loss against ${escapeHtml(sweep.axis)} (mean ± sd over seeds; below 0: FedEx better)</figcaption><canvas id="chart-sweep-gap"></canvas></figure>`;
}

const CHART_SCRIPT = `
(function () {
  var report = JSON.parse(document.getElementById('report-data').textContent);
  if (!report.settings.sweep) return;
  if (typeof Chart === 'undefined') { document.getElementById('no-charts').hidden = false; return; }
  function band(label, color, points) {
    var mean = points.map(function (p) { return { x: p.x, y: p.s.mean }; });
    var lo = points.map(function (p) { return { x: p.x, y: p.s.sd === null ? p.s.mean : p.s.mean - p.s.sd }; });
    var hi = points.map(function (p) { return { x: p.x, y: p.s.sd === null ? p.s.mean : p.s.mean + p.s.sd }; });
    return [{ label: label, data: mean, borderColor: color, backgroundColor: color },
      { label: label + ' − sd', data: lo, borderColor: color, borderDash: [4, 4], pointRadius: 0, borderWidth: 1 },
      { label: label + ' + sd', data: hi, borderColor: color, borderDash: [4, 4], pointRadius: 0, borderWidth: 1 }];
  }
  function chart(id, datasets, yTitle) {
    new Chart(document.getElementById(id), { type: 'line', data: { datasets: datasets }, options: { parsing: false, animation: false,
      scales: { x: { type: 'linear', title: { display: true, text: report.settings.sweep.axis } }, y: { title: { display: true, text: yTitle } } },
      plugins: { legend: { position: 'bottom' } } } });
  }
  function of(method, key) {
    return report.summary.map(function (p) {
      var m = p.methods.filter(function (x) { return x.method === method; })[0];
      return { x: p.sweepValue, s: m ? m[key] : { mean: null, sd: null } };
    }).filter(function (p) { return p.s.mean !== null; });
  }
  chart('chart-sweep-dev', band('FedIT', '#d62728', of('fedit', 'meanRelativeDeviation')).concat(band('FedEx', '#1f77b4', of('fedex', 'meanRelativeDeviation'))), 'relative deviation');
  var gaps = report.summary.filter(function (p) { return p.gap !== null && p.gap.evalLoss.mean !== null; })
    .map(function (p) { return { x: p.sweepValue, s: p.gap.evalLoss }; });
  chart('chart-sweep-gap', band('FedEx − FedIT', '#9467bd', gaps), 'eval loss gap');
})();
`;

/** Renders the page. `chartJs` is the Chart.js UMD source, or null (tables only). */
export function renderComparisonHtml(report: ComparisonReport, chartJs: string | null): string {
  const s = report.settings;
  const methods = s.methods;
  const runs = table(['run', 'seed', 'clients', 'local steps', 'initial eval loss', ...methods.flatMap((m) => [`${m} eval loss`, `${m} exact match`]), 'time (s)'],
    report.runs.map((r) => [`<a href="${escapeHtml(`${r.label}/report.html`)}">${escapeHtml(r.label)}</a>`, String(r.seed), String(r.clients), String(r.localSteps), fmt(r.initialEvalLoss),
      ...methods.flatMap((m) => {
        const c = r.comparison.find((x) => x.method === m);
        return [c === undefined ? '–' : fmt(c.evalLoss), c?.exactMatch === null || c === undefined ? '–' : pct(c.exactMatch)];
      }), r.seconds.toFixed(1)]
    ));
  const settings = table(['setting', 'value'], [
    ['model', s.model],
    ['data', s.data],
    ['split', s.split],
    ['seeds', s.seeds.join(', ')],
    ['sweep', s.sweep === null ? 'none' : `${s.sweep.axis} = ${s.sweep.values.join(', ')}`],
    ['clients', String(s.clients)],
    ['rounds', String(s.rounds)],
    ['local steps', String(s.localSteps)],
    ['batch size', String(s.batchSize)],
    ['learning rate', String(s.lr)],
    ['rank / alpha', `${s.rank} / ${s.alpha}`],
    ['aggregation', s.aggregation ?? 'mean'],
    ['device', s.device],
    ['trainer', s.workload],
    ['machine', `${report.machine.cpus} CPUs, ${report.machine.platform}-${report.machine.arch}, Node ${report.machine.node}`],
    ['total time', `${report.seconds.toFixed(1)} s`],
    ['created', report.createdAt],
  ].map((r) => r.map(escapeHtml)));
  return `${reportPageHead('FedEx simulation comparison')}
<p class="note">${report.runs.length} runs: every method on ${escapeHtml(String(s.seeds.length))} seed${s.seeds.length === 1 ? '' : 's'}${
  s.sweep === null ? '' : ` at each ${escapeHtml(s.sweep.axis)} value`
}. The seed varies the data, its split across clients, the LoRA initialisation and the data order; within a seed every method sees the same. Figures are mean ± sample standard deviation over the seeds, computed from the runs below (each with its own report).</p>
<h2>Seeds: mean ± sd</h2>
${report.summary.map((p) => pointSection(p, report)).join('\n')}
<p id="no-charts" class="note" hidden>Charts are unavailable: Chart.js was not found when this report was written.</p>
${sweepSection(report)}
<h2>Runs</h2>
${runs}
<h2>Settings</h2>
${settings}
<script type="application/json" id="report-data">${scriptJson(report)}</script>
${chartJs !== null && s.sweep !== null ? `<script>${chartJs.replace(/<\/script/gi, '<\\/script')}</script>` : ''}
<script>${CHART_SCRIPT}</script>
</body>
</html>
`;
}

/** Writes report.html; `chartJsSource` undefined = find Chart.js on disk, null = no charts. */
export async function writeComparisonHtml(path: string, report: ComparisonReport, chartJsSource?: string | null): Promise<void> {
  let chartJs = chartJsSource;
  if (chartJs === undefined && report.settings.sweep !== null) {
    const file = findChartJs();
    chartJs = file !== null ? readFileSync(file, 'utf8') : null;
  }
  await writeFileAtomic(path, renderComparisonHtml(report, chartJs ?? null));
}
