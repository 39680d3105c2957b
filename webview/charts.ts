/**
 * chart.js wiring: only the controllers, elements, scales and plugins the dashboard draws are
 * registered. A `ChartPanel` owns one canvas in a container that carries `data-testid` and
 * `data-points` (how many points it plots, for the end-to-end test), and maps the selectors'
 * series (series.ts) to datasets, styled from the VS Code theme.
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Title,
  Tooltip,
  type ChartConfiguration,
  type ChartDataset,
  type ScaleOptions,
} from 'chart.js';
import { seriesStyle, toCss } from './colors.js';
import { countPoints, type BarSeries, type LineSeries } from './series.js';
import type { ChartTheme } from './theme.js';

Chart.register(LineController, BarController, ScatterController, LineElement, PointElement, BarElement, LinearScale, LogarithmicScale, CategoryScale, Legend, Tooltip, Title);

/**
 * Creates `<div class="chart" data-testid=…><canvas/><p class="chart-empty"/></div>` and appends it
 * to `parent`; the paragraph says what the chart waits for while it has no points.
 */
export function chartContainer(parent: HTMLElement, testId: string, label: string, emptyText = 'No data yet.'): { box: HTMLDivElement; canvas: HTMLCanvasElement } {
  const box = document.createElement('div');
  box.className = 'chart';
  box.id = testId;
  box.dataset.testid = testId;
  box.dataset.points = '0';
  const canvas = document.createElement('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  const empty = document.createElement('p');
  empty.className = 'chart-empty';
  empty.textContent = emptyText;
  box.append(canvas, empty);
  parent.append(box);
  return { box, canvas };
}

/** Axis options in the theme's colours. */
export function axis(theme: ChartTheme, title: string, extra: Record<string, unknown> = {}): ScaleOptions {
  return {
    grid: { color: toCss(theme.grid, theme.kind.startsWith('high') ? 0.4 : 0.25) },
    border: { color: toCss(theme.border, 0.6) },
    ticks: { color: toCss(theme.foreground, 0.9), font: { family: theme.fontFamily, size: theme.fontSize - 2 } },
    title: { display: title !== '', text: title, color: toCss(theme.foreground), font: { family: theme.fontFamily, size: theme.fontSize - 1 } },
    ...extra,
  } as ScaleOptions;
}

/** Plugin options (legend, tooltip, title) in the theme's colours. */
function pluginOptions(theme: ChartTheme, title: string, kind: PanelKind, tooltipTitle?: (index: number) => string): Record<string, unknown> {
  // Line charts show a line sample (with its dash) in the legend; bar charts a filled box.
  const sample = kind === 'line' ? { usePointStyle: true, pointStyle: 'line', pointStyleWidth: 28 } : { boxWidth: 14 };
  return {
    legend: { position: 'bottom', labels: { color: toCss(theme.foreground), ...sample, font: { family: theme.fontFamily, size: theme.fontSize - 2 } } },
    title: { display: true, text: title, color: toCss(theme.foreground), font: { family: theme.fontFamily, size: theme.fontSize, weight: 'bold' } },
    tooltip: {
      backgroundColor: toCss(theme.background, 0.95),
      titleColor: toCss(theme.foreground),
      bodyColor: toCss(theme.foreground),
      borderColor: toCss(theme.border, 0.8),
      borderWidth: 1,
      ...(tooltipTitle === undefined ? {} : { callbacks: { title: (items: { dataIndex: number }[]) => (items.length > 0 ? tooltipTitle(items[0].dataIndex) : '') } }),
    },
  };
}

/** Kind of a chart panel. */
type PanelKind = 'line' | 'bar';

/** A chart in its container, updated in place when its series change. */
export class ChartPanel {
  private chart: Chart | null = null;
  private lastLine: LineSeries[] = [];
  private lastBar: BarSeries = { categories: [], titles: [], series: [] };
  readonly box: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;

  constructor(parent: HTMLElement, readonly testId: string, private readonly kind: PanelKind, private readonly title: string, private readonly xTitle: string, private readonly yTitle: string, private theme: ChartTheme, emptyText?: string) {
    ({ box: this.box, canvas: this.canvas } = chartContainer(parent, testId, title, emptyText));
  }

  /** Draws per-round lines (kind 'line'). */
  setLines(series: LineSeries[]): void {
    this.lastLine = series;
    this.setCount(countPoints(series));
    const datasets = series.map((s, i): ChartDataset<'line', { x: number; y: number }[]> => {
      const style = seriesStyle(s.key, i);
      const color = this.theme.charts[style.color];
      const strong = s.role === 'global' || s.role === 'method';
      return {
        label: s.label,
        data: s.points,
        borderColor: toCss(color),
        backgroundColor: toCss(color, 0.6),
        borderDash: style.dash,
        borderWidth: strong ? this.theme.lineWidth + 1 : this.theme.lineWidth,
        pointRadius: s.points.length > 40 ? 0 : 3,
        tension: 0,
        spanGaps: true,
      };
    });
    const maxX = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.x)));
    this.render({
      type: 'line',
      data: { datasets },
      options: this.baseOptions({
        x: axis(this.theme, this.xTitle, { type: 'linear', min: 1, max: maxX, ticks: { ...tickStyle(this.theme), stepSize: 1, precision: 0 } }),
        y: axis(this.theme, this.yTitle, { type: 'linear', beginAtZero: false }),
      }),
    });
  }

  /** Draws grouped bars (kind 'bar'). */
  setBars(bars: BarSeries): void {
    this.lastBar = bars;
    this.setCount(countPoints(bars));
    const datasets = bars.series.map((s, i): ChartDataset<'bar', (number | null)[]> => {
      const color = this.theme.charts[seriesStyle(s.key, i).color];
      return { label: s.label, data: s.values, backgroundColor: toCss(color, 0.75), borderColor: toCss(color), borderWidth: this.theme.kind.startsWith('high') ? 2 : 1 };
    });
    this.render({
      type: 'bar',
      data: { labels: bars.categories, datasets },
      options: this.baseOptions({ x: axis(this.theme, this.xTitle), y: axis(this.theme, this.yTitle, { beginAtZero: true }) }, (i) => bars.titles[i] ?? ''),
    });
  }

  private setCount(points: number): void {
    this.box.dataset.points = String(points);
    this.box.classList.toggle('is-empty', points === 0);
  }

  /** Re-styles the chart after a theme change. */
  setTheme(theme: ChartTheme): void {
    this.theme = theme;
    this.chart?.destroy();
    this.chart = null;
    if (this.kind === 'line') this.setLines(this.lastLine);
    else this.setBars(this.lastBar);
  }

  private baseOptions(scales: Record<string, ScaleOptions>, tooltipTitle?: (index: number) => string): ChartConfiguration['options'] {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      normalized: true,
      interaction: { mode: 'nearest', intersect: false },
      color: toCss(this.theme.foreground),
      font: { family: this.theme.fontFamily },
      scales,
      plugins: pluginOptions(this.theme, this.title, this.kind, tooltipTitle),
    } as ChartConfiguration['options'];
  }

  private render(config: ChartConfiguration): void {
    if (this.chart !== null && (this.chart.config as ChartConfiguration).type === config.type) {
      this.chart.data = config.data;
      this.chart.options = config.options ?? {};
      this.chart.update('none');
      return;
    }
    this.chart?.destroy();
    this.chart = new Chart(this.canvas, config);
  }

  /** Releases the chart. */
  dispose(): void {
    this.chart?.destroy();
    this.chart = null;
  }
}

/** Tick colours and font of the theme (for axes given extra tick options). */
export function tickStyle(theme: ChartTheme): Record<string, unknown> {
  return { color: toCss(theme.foreground, 0.9), font: { family: theme.fontFamily, size: theme.fontSize - 2 } };
}
