/**
 * The dashboard's DOM: a toolbar (federation, method, round, export), the round-progress panel and
 * the chart sections, built once; `render(state)` updates them from the model. User choices are
 * reported through `onChoice` (main.ts updates the model, or sends the export request and shows its
 * outcome with `showExport`).
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import type { VscodeSingleSelect } from '@vscode-elements/elements/dist/vscode-single-select/index.js';
import { ChartPanel } from './charts.js';
import { el, setOptions, setText } from './dom.js';
import { HeatmapPanel } from './heatmap.js';
import type { DashboardState, UiChoice } from './model.js';
import { ProgressPanel } from './progressPanel.js';
import { RoundsTable } from './roundsTable.js';
import {
  adapterDiffs,
  clientDiffs,
  deviationSeries,
  heatmapModules,
  lossSeries,
  residualByLayer,
  residualByType,
  selectedHeatmap,
  selectedRound,
  selectedRun,
} from './series.js';
import type { ChartTheme } from './theme.js';
import type { FederationKind } from '../src/extension/state/phases.js';

const FEDERATION_KIND_TEXT: Readonly<Record<FederationKind, string>> = { simulation: 'simulation', host: 'hosted', join: 'joined', remote: 'remote' };

/** Where an export request stands (the text next to the Export button). */
export type ExportStatus = 'idle' | 'pending' | 'saved' | 'failed';

function select(testId: string, label: string): VscodeSingleSelect {
  const s = el('vscode-single-select', { 'data-testid': testId, id: testId, 'aria-label': label });
  return s;
}

function section(parent: HTMLElement, testId: string, heading: string, ...tools: HTMLElement[]): HTMLElement {
  const body = el('div', { class: 'section-body' });
  const box = el('vscode-collapsible', { class: 'section', 'data-testid': `${testId}-section`, heading, open: '', 'always-show-header-actions': '' });
  if (tools.length > 0) box.append(el('div', { class: 'section-tools', slot: 'actions' }, ...tools));
  box.append(body);
  parent.append(box);
  return body;
}

/** The dashboard view. */
export class DashboardView {
  private readonly federation = select('federation-select', 'federation');
  private readonly run = select('run-select', 'method');
  private readonly round = select('round-select', 'round of the per-round charts');
  private readonly module = select('module-select', 'module of the heatmap');
  private readonly factor = select('factor-select', 'adapter factor');
  private readonly exportButton = el('vscode-button', { 'data-testid': 'export-report', secondary: '' }, 'Export report');
  /** The outcome of the last export request (`data-status`: idle, pending, saved or failed). */
  private readonly exportStatus = el('span', { class: 'muted', 'data-testid': 'export-status', 'data-status': 'idle', role: 'status' });
  private readonly subtitle = el('span', { class: 'muted', 'data-testid': 'federation-info' });
  private readonly empty = el('p', { class: 'empty', 'data-testid': 'empty-state' }, 'No federation yet. Start one with “FedEx: Run Local Simulation” or “FedEx: Host Federation”.');
  private readonly progress: ProgressPanel;
  private readonly loss: ChartPanel;
  private readonly deviation: ChartPanel;
  private readonly residual: ChartPanel;
  private readonly residualLayer: ChartPanel;
  private readonly diff: ChartPanel;
  private readonly clientDiff: ChartPanel;
  private readonly heatmap: HeatmapPanel;
  private readonly rounds: RoundsTable;
  private readonly charts: HTMLElement;

  constructor(root: HTMLElement, theme: ChartTheme, private readonly onChoice: (choice: UiChoice) => void) {
    const toolbar = el('header', { class: 'toolbar' }, el('label', {}, 'Federation', this.federation), el('label', {}, 'Method', this.run), el('label', {}, 'Round', this.round), this.subtitle, el('span', { class: 'spacer' }),
      this.exportStatus, this.exportButton);
    root.replaceChildren(toolbar, this.empty); // drops the static "Loading…" placeholder
    this.progress = new ProgressPanel(root);
    this.charts = el('div', { class: 'sections' });
    root.append(this.charts);
    const lossBody = section(this.charts, 'loss', 'Loss per round');
    this.loss = new ChartPanel(lossBody, 'loss-chart', 'line', 'Train loss per client and global mean', 'round', 'loss', theme, 'Waiting for the first round to close.');
    const devBody = section(this.charts, 'deviation', 'Update deviation of plain averaging');
    this.deviation = new ChartPanel(devBody, 'deviation-chart', 'line', '‖s·ΔR‖ / ‖s·Σ wᵢBᵢAᵢ‖ per round', 'round', 'relative deviation', theme, 'No deviation yet: it is measured when a round aggregates (not for centralized or FFA-LoRA).');
    const resBody = section(this.charts, 'residual', 'Residual norms ‖ΔR‖');
    this.residual = new ChartPanel(resBody, 'residual-chart', 'line', 'Per module type, per round', 'round', '‖ΔR‖_F', theme, 'No residuals yet: they appear when a round aggregates.');
    this.residualLayer = new ChartPanel(resBody, 'residual-layer-chart', 'bar', 'Per layer and module type (selected round)', 'layer', '‖ΔR‖_F', theme, 'No residuals in this round.');
    const diffBody = section(this.charts, 'diff', 'Adapter diffs', el('label', {}, 'Client factor', this.factor));
    this.diff = new ChartPanel(diffBody, 'diff-chart', 'bar', 'Global adapter change since the previous round', 'module', 'Frobenius norm', theme, 'No adapter change recorded for this round.');
    this.clientDiff = new ChartPanel(diffBody, 'client-diff-chart', 'bar', 'Each client against the global adapter', 'module', 'Frobenius norm', theme, 'No client distances recorded for this round.');
    const heatBody = section(this.charts, 'heatmap', 'Update heatmap', el('label', {}, 'Module', this.module));
    this.heatmap = new HeatmapPanel(heatBody, theme);
    this.rounds = new RoundsTable(section(this.charts, 'rounds', 'Rounds'));
    setOptions(this.factor, [{ value: 'b', label: '‖Bᵢ − B̄‖' }, { value: 'a', label: '‖Aᵢ − Ā‖' }], 'b');
    this.federation.addEventListener('change', () => this.onChoice({ kind: 'federation', value: this.federation.value }));
    this.run.addEventListener('change', () => this.onChoice({ kind: 'run', value: this.run.value }));
    this.round.addEventListener('change', () => this.onChoice({ kind: 'round', value: this.round.value === 'latest' ? null : Number(this.round.value) }));
    this.module.addEventListener('change', () => this.onChoice({ kind: 'module', value: this.module.value }));
    this.factor.addEventListener('change', () => this.onChoice({ kind: 'factor', value: this.factor.value === 'a' ? 'a' : 'b' }));
    this.exportButton.addEventListener('click', () => this.onChoice({ kind: 'export' }));
  }

  /** Re-draws everything from the model. */
  render(state: DashboardState): void {
    const view = state.federations.find((f) => f.id === state.selected) ?? null;
    const run = view === null ? null : selectedRun(view, state.ui.run);
    this.empty.hidden = view !== null;
    this.charts.hidden = view === null;
    this.exportButton.toggleAttribute('disabled', view === null || this.exportStatus.dataset.status === 'pending');
    setOptions(this.federation, state.federations.map((f) => ({
      value: f.id,
      label: `${f.label} (${FEDERATION_KIND_TEXT[f.kind]}${state.restored.includes(f.id) ? ', restored' : f.live ? ', live' : ''})`,
    })), state.selected ?? '');
    this.federation.parentElement!.hidden = state.federations.length < 2;
    this.progress.update(view, run);
    if (view === null || run === null) {
      this.clear();
      return;
    }
    setOptions(this.run, view.runs.map((r) => ({ value: r.key, label: r.key === '' ? 'federation' : r.key })), run.key);
    this.run.parentElement!.hidden = view.runs.length < 2;
    setOptions(this.round, [{ value: 'latest', label: 'latest' }, ...run.rounds.map((r) => ({ value: String(r.round), label: `round ${r.round}` }))], state.ui.round === null ? 'latest' : String(state.ui.round));
    const sim = view.simulation;
    setText(this.subtitle, sim === null ? `${view.eventCount} events` : `${sim.methods.join(' vs ')} · ${sim.clients ?? '?'} clients · model ${sim.model} · data ${sim.data}`);
    const round = selectedRound(run, state.ui.round);
    this.loss.setLines(lossSeries(view, run));
    this.deviation.setLines(deviationSeries(view, run));
    this.residual.setLines(residualByType(run));
    this.residualLayer.setBars(residualByLayer(round));
    this.diff.setBars(adapterDiffs(round));
    this.clientDiff.setBars(clientDiffs(run, round, state.ui.factor));
    setOptions(this.factor, [{ value: 'b', label: '‖Bᵢ − B̄‖' }, { value: 'a', label: '‖Aᵢ − Ā‖' }], state.ui.factor);
    const modules = heatmapModules(run);
    const map = selectedHeatmap(run, state.ui.module);
    setOptions(this.module, modules.map((m) => ({ value: m, label: m })), map?.module ?? '');
    this.module.parentElement!.hidden = modules.length === 0;
    this.heatmap.set(map);
    this.rounds.update(run);
  }

  /** Shows where an export request stands; the button waits while one is pending. */
  showExport(status: ExportStatus, text: string): void {
    this.exportStatus.dataset.status = status;
    setText(this.exportStatus, text);
    this.exportButton.toggleAttribute('disabled', status === 'pending');
  }

  /** Re-styles every chart. */
  setTheme(theme: ChartTheme): void {
    for (const c of [this.loss, this.deviation, this.residual, this.residualLayer, this.diff, this.clientDiff]) c.setTheme(theme);
    this.heatmap.setTheme(theme);
  }

  private clear(): void {
    for (const c of [this.loss, this.deviation, this.residual]) c.setLines([]);
    for (const c of [this.residualLayer, this.diff, this.clientDiff]) c.setBars({ categories: [], titles: [], series: [] });
    this.heatmap.set(null);
    this.rounds.update(null);
    setText(this.subtitle, '');
  }
}
