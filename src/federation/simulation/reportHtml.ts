/**
 * report.html: one self-contained page that opens offline. Tables are rendered here (readable
 * without scripts); charts are drawn by Chart.js, inlined from node_modules/chart.js/dist/
 * chart.umd.js, from the report embedded as JSON (`<` escaped, so no text can close the script).
 * Every string that reaches the markup goes through `escapeHtml`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../formats/atomicFile.js';
import type { SimulationReport } from './report.js';

const CHART_FILE = join('node_modules', 'chart.js', 'dist', 'chart.umd.js');

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON for a `<script type="application/json">` block: `<`, `>`, `&`, U+2028/9 escaped. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))
    .replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Finds chart.umd.js by walking up from this module, the script being run and the working directory. */
export function findChartJs(): string | null {
  const starts: string[] = [];
  try {
    starts.push(dirname(fileURLToPath(import.meta.url)));
  } catch {
    // Bundled as CommonJS: import.meta.url is not available.
  }
  if (process.argv[1] !== undefined) starts.push(dirname(resolve(process.argv[1])));
  starts.push(process.cwd());
  for (const start of starts) {
    for (let dir = start;; dir = dirname(dir)) {
      const candidate = join(dir, CHART_FILE);
      if (existsSync(candidate)) return candidate;
      const vendored = join(dir, 'dist', 'vendor', 'chart.umd.js');
      if (existsSync(vendored)) return vendored;
      if (dirname(dir) === dir) break;
    }
  }
  return null;
}

function fmt(x: number | null, digits = 4): string {
  if (x === null || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? x.toExponential(digits - 1) : x.toPrecision(digits);
}

function pct(x: number | null): string {
  return x === null || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(1)}%`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const CHART_SCRIPT = `
(function () {
  var report = JSON.parse(document.getElementById('report-data').textContent);
  if (typeof Chart === 'undefined') { document.getElementById('no-charts').hidden = false; return; }
  var colors = { fedex: '#1f77b4', fedit: '#d62728', ffa: '#2ca02c', flora: '#9467bd', fedsb: '#ff7f0e', centralized: '#7f7f7f' };
  var dashes = { fedex: [], fedit: [6, 4], ffa: [2, 3], flora: [8, 2, 2, 2], fedsb: [4, 2], centralized: [10, 3, 2, 3] };
  var palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  function line(id, datasets, yTitle, log) {
    var el = document.getElementById(id);
    if (!el) return;
    new Chart(el, { type: 'line', data: { datasets: datasets }, options: { parsing: false, animation: false,
      scales: { x: { type: 'linear', title: { display: true, text: 'round' }, ticks: { stepSize: 1 } },
                y: { type: log ? 'logarithmic' : 'linear', title: { display: true, text: yTitle } } },
      plugins: { legend: { position: 'bottom' } } } });
  }
  line('chart-loss', report.methods.map(function (m) {
    return { label: m.method, borderColor: colors[m.method], backgroundColor: colors[m.method], borderDash: dashes[m.method],
      data: m.rounds.map(function (r) { return { x: r.round, y: r.evalLoss }; }) };
  }), 'eval loss');
  var withAcc = report.methods.filter(function (m) { return m.rounds.some(function (r) { return r.evalAccuracy !== null; }); });
  if (withAcc.length > 0) {
    document.getElementById('acc-section').hidden = false;
    line('chart-acc', withAcc.map(function (m) {
      return { label: m.method, borderColor: colors[m.method], backgroundColor: colors[m.method], borderDash: dashes[m.method],
        data: m.rounds.filter(function (r) { return r.evalAccuracy !== null; }).map(function (r) { return { x: r.round, y: r.evalAccuracy }; }) };
    }), 'eval accuracy');
  }
  report.methods.forEach(function (m, i) {
    var layers = {};
    m.rounds.forEach(function (r) { r.layers.forEach(function (l) {
      var key = l.layer === null ? 'other' : 'layer ' + l.layer;
      (layers[key] = layers[key] || []).push({ x: r.round, y: l.relativeDeviation });
    }); });
    var keys = Object.keys(layers);
    if (keys.length === 0 || !document.getElementById('chart-dev-' + i)) return;
    line('chart-dev-' + i, keys.map(function (k, j) {
      return { label: k, borderColor: palette[j % palette.length], backgroundColor: palette[j % palette.length], data: layers[k] };
    }), 'relative deviation ‖sΔR‖/‖sΣwBA‖');
  });
})();
`;

const DEVIATION_NOTE: Readonly<Record<string, string>> = {
  fedex: ' — folded into the base weights, so nothing is lost',
  fedit: ' — lost by plain averaging',
};

/** A deviation chart is worth drawing when some layer deviates beyond float32 round-off (FFA-LoRA's is zero). */
function showDeviation(m: SimulationReport['methods'][number]): boolean {
  return m.rounds.some((r) => r.layers.some((l) => l.relativeDeviation > 1e-6));
}

/** The intro's sentence on a robust aggregation rule (empty for the mean). */
function robustNote(rule: string | undefined): string {
  if (rule === undefined || rule === 'mean') return '';
  return ` Aggregation: <strong>${escapeHtml(rule)}</strong>, coordinate-wise over the clients (unweighted) instead of the mean: Ā and B̄ are the ${escapeHtml(rule)} of the clients' factors, FedEx-LoRA folds the dense s·(${
    escapeHtml(rule)
  }ᵢ(BᵢAᵢ) − B̄Ā) into the base weights, and relative deviation is measured against s·${escapeHtml(rule)}ᵢ(BᵢAᵢ).`;
}

/** The DP columns of a round: ε so far (∞ without noise, – at round 0) and `k/n` updates clipped. */
function privacyCells(p: SimulationReport['methods'][number]['rounds'][number]['privacy']): string[] {
  if (p === undefined) return ['–', '–'];
  return [p.epsilon === null ? '∞' : fmt(p.epsilon), `${p.clipped}/${p.updateNorms.length}`];
}

/** The intro's sentence on client-level DP (empty without it). */
function privacyIntro(p: SimulationReport['settings']['privacy']): string {
  if (p === undefined) return '';
  return ` Client-level differential privacy on the federated methods: each client's update is clipped to L2 norm ${escapeHtml(String(p.clip))} and Gaussian noise of std σ·C/m (σ = ${
    escapeHtml(String(p.noiseMultiplier))
  }, m clients per round) is added to the average; ε is at δ = ${
    escapeHtml(String(p.delta))
  } with sampling rate 1 (no amplification by sampling claimed). FedEx-LoRA folds the noisy residual into the base, so its global model is exactly the noisy mean of the clipped updates; deviation figures are not computed under DP. Centralized LoRA is not private.`;
}

/** Renders the page. `chartJs` is the Chart.js UMD source, or null (tables only, with a note). */
export function renderReportHtml(report: SimulationReport, chartJs: string | null): string {
  const s = report.settings;
  const comparison = table(
    ['method', 'final eval loss', 'accuracy', 'exact match', 'mean rel. deviation', 'bytes sent', 'bytes received', 'time'],
    report.comparison.map((m) => [m.method, fmt(m.evalLoss), pct(m.evalAccuracy), pct(m.exactMatch), fmt(m.meanRelativeDeviation, 3), bytes(m.bytesSent), bytes(m.bytesReceived), `${m.seconds.toFixed(1)} s`]),
  );
  const perRound = report.methods.map((m) => {
    // --residual-rank: one more column, the largest share of a module's residual the round dropped.
    const cut = m.rounds.some((r) => r.residualTruncation !== undefined);
    // Client-level DP: ε spent after the round and the updates clipped.
    const dp = m.rounds.some((r) => r.privacy !== undefined);
    return `<h3>${escapeHtml(m.method)}</h3>\n${
      table(
        ['round', 'eval loss', 'accuracy', 'train loss', 'clients', 'mean rel. deviation', ...(cut ? ['residual dropped (rank)'] : []), ...(dp ? ['DP ε', 'clipped'] : []), 'bytes ↓', 'bytes ↑', 'time'],
        m.rounds.map((
          r,
        ) => [String(r.round), fmt(r.evalLoss), pct(r.evalAccuracy), fmt(r.trainLoss), String(r.participants), fmt(r.meanRelativeDeviation, 3),
          ...(cut ? [r.residualTruncation === undefined ? '–' : `${fmt(r.residualTruncation.maxRelativeError, 3)} (${r.residualTruncation.rank})`] : []), ...(dp ? privacyCells(r.privacy) : []), bytes(r.bytesSent), bytes(r.bytesReceived),
          `${r.seconds.toFixed(1)} s`]
        ),
      )
    }`;
  }).join('\n');
  const devCharts = report.methods.map((m, i) => (showDeviation(m)
    ? `<figure><figcaption>${escapeHtml(m.method)}: relative deviation per layer per round${DEVIATION_NOTE[m.method] ?? ''}</figcaption><canvas id="chart-dev-${i}"></canvas></figure>` :
    '')
  ).join('\n');
  const settings = table(['setting', 'value'], [['model', s.model], ['data', s.data], ['split', s.split], ['clients', String(s.clients)], ['rounds', String(s.rounds)], ['local steps', String(s.localSteps)], ['batch size',
    String(s.batchSize)], ['learning rate', String(s.lr)], ['rank / alpha', `${s.rank} / ${s.alpha}`], ['adapted modules', `${s.modules} (${s.targetModules.join(', ')})`], ['aggregation', s.aggregation ?? 'mean'],
    ...(s.privacy !== undefined ? [['client-level DP', `clip C = ${s.privacy.clip}, noise multiplier σ = ${s.privacy.noiseMultiplier}, δ = ${s.privacy.delta}`]] : []), ['seed', String(s.seed)], ['device', s.device], ['trainer', s.workload],
    ['machine', `${report.machine.cpus} CPUs, ${report.machine.platform}-${report.machine.arch}, Node ${report.machine.node}`], ['total time', `${report.seconds.toFixed(1)} s`], ['created', report.createdAt]]);
  return `${reportPageHead('FedEx simulation report')}
<p class="note">The same federation (${escapeHtml(String(s.clients))} clients, ${escapeHtml(String(s.rounds))} rounds × ${escapeHtml(String(s.localSteps))} local steps, data split ${
  escapeHtml(s.split)
}) run with each method; centralized LoRA trains one model on the pooled data with the same number of steps and examples. Relative deviation is ‖s·ΔR‖_F / ‖s·Σ wᵢBᵢAᵢ‖_F: the share of the ideal update that plain averaging (FedIT) loses and FedEx-LoRA folds into the base weights.${
  robustNote(s.aggregation)
}${privacyIntro(s.privacy)}</p>
<h2>Comparison</h2>
${comparison}
<p id="no-charts" class="note" hidden>Charts are unavailable: Chart.js was not found when this report was written.</p>
<figure><figcaption>Eval loss of the global model per round</figcaption><canvas id="chart-loss"></canvas></figure>
<figure id="acc-section" hidden><figcaption>Eval accuracy of the global model per round</figcaption><canvas id="chart-acc"></canvas></figure>
${devCharts}
<h2>Per round</h2>
${perRound}
<h2>Settings</h2>
${settings}
<script type="application/json" id="report-data">${scriptJson(report)}</script>
${chartJs !== null ? `<script>${chartJs.replace(/<\/script/gi, '<\\/script')}</script>` : ''}
<script>${CHART_SCRIPT}</script>
</body>
</html>
`;
}

/** Writes report.html; `chartJsSource` undefined = find Chart.js on disk, null = no charts. */
export async function writeReportHtml(path: string, report: SimulationReport, chartJsSource?: string | null): Promise<void> {
  let chartJs = chartJsSource;
  if (chartJs === undefined) {
    const file = findChartJs();
    chartJs = file !== null ? readFileSync(file, 'utf8') : null;
  }
  await writeFileAtomic(path, renderReportHtml(report, chartJs));
}

/** The head of a report page (offline: inline styles and scripts only, by CSP) and its title heading, up to the open body. */
export function reportPageHead(title: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1em 0 2em; }
figcaption { font-weight: 600; margin-bottom: 0.4em; }
canvas { max-height: 360px; }
.note { color: #555; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>`;
}
