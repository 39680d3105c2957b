/**
 * The heatmap of one module's pooled update: a chart.js scatter chart whose linear axes (column,
 * row block) frame the matrix; a small plugin fills each cell in the chart area with its theme
 * colour (sequential background → red for the coordinator's max-|ΔW| magnitudes, diverging
 * blue → background → red for signed values), and one invisible point per cell gives chart.js
 * tooltips. Beside it, a colour bar: a second chart whose linear y axis carries the value scale and
 * whose area is painted with the same gradient. Axes, ticks and tooltips are chart.js's own.
 */
import { Chart, type ChartConfiguration, type Plugin } from 'chart.js';
import type { HeatmapView } from '../src/extension/state/federationState.js';
import { axis, chartContainer, tickStyle } from './charts.js';
import { diverging, sequential, toCss } from './colors.js';
import { heatmapScale } from './series.js';
import type { ChartTheme } from './theme.js';

interface CellPoint {
  x: number;
  y: number;
  v: number | null;
}

type Scale = ReturnType<typeof heatmapScale>;

function cellColor(theme: ChartTheme, value: number | null, scale: Scale): string {
  const c = scale.signed
    ? diverging(value, scale.max, theme.charts.blue, theme.background, theme.charts.red)
    : sequential(value, scale.max, theme.background, theme.charts.red);
  return c === null ? toCss(theme.grid, 0.2) : toCss(c);
}

/** A short tick label: 0, 0.012, 3.4e-5. */
function compact(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e4 ? String(Number(v.toPrecision(2))) : v.toExponential(1);
}

/** What the caption says about a heatmap. */
function caption(map: HeatmapView | null): string {
  if (map === null) return 'No update heatmap yet (the coordinator sends one per module after each aggregated round).';
  const shape = map.sourceRows !== null && map.sourceCols !== null ? ` of the ${map.sourceRows}×${map.sourceCols} update` : '';
  if (map.values.length === 0) return `${map.module}, round ${map.round}: no heatmap (${map.note ?? 'not sent'}).`;
  const norm = map.norm === null ? '' : `, ‖ΔW‖_F ${map.norm.toPrecision(3)}`;
  const max = map.maxAbs === null ? '' : `, max |ΔW| ${map.maxAbs.toPrecision(3)}`;
  return `${map.module}, round ${map.round}: change of W0 + s·B̄Ā over the round, max |ΔW| per block, ${map.rows}×${map.cols} blocks${shape}${norm}${max}.`;
}

/** Draws the cells before the (invisible) points, inside the axes. */
function cellsPlugin(get: () => { map: HeatmapView | null; theme: ChartTheme }): Plugin<'scatter'> {
  return {
    id: 'fedexHeatmapCells',
    beforeDatasetsDraw(chart) {
      const { map, theme } = get();
      if (map === null) return;
      const { ctx, chartArea, scales } = chart;
      const scale = heatmapScale(map);
      ctx.save();
      ctx.beginPath();
      ctx.rect(chartArea.left, chartArea.top, chartArea.right - chartArea.left, chartArea.bottom - chartArea.top);
      ctx.clip();
      for (let i = 0; i < map.rows; i++) {
        const y0 = scales.y.getPixelForValue(i);
        const y1 = scales.y.getPixelForValue(i + 1);
        for (let j = 0; j < map.cols; j++) {
          const x0 = scales.x.getPixelForValue(j);
          const x1 = scales.x.getPixelForValue(j + 1);
          ctx.fillStyle = cellColor(theme, map.values[i * map.cols + j], scale);
          // Half a pixel of overlap hides seams between cells.
          ctx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0) + 0.5, Math.abs(y1 - y0) + 0.5);
        }
      }
      ctx.restore();
    },
  };
}

/** Paints the colour bar's chart area with the diverging gradient, top = +range. */
function gradientPlugin(get: () => { theme: ChartTheme; scale: Scale }): Plugin<'scatter'> {
  return {
    id: 'fedexColorBar',
    beforeDatasetsDraw(chart) {
      const { theme, scale } = get();
      const { ctx, chartArea } = chart;
      const steps = 64;
      const h = (chartArea.bottom - chartArea.top) / steps;
      for (let k = 0; k < steps; k++) {
        const v = scale.max - ((scale.max - scale.min) * (k + 0.5)) / steps;
        ctx.fillStyle = cellColor(theme, v, scale);
        ctx.fillRect(chartArea.left, chartArea.top + k * h, chartArea.right - chartArea.left, h + 0.5);
      }
      ctx.strokeStyle = toCss(theme.border, 0.8);
      ctx.strokeRect(chartArea.left, chartArea.top, chartArea.right - chartArea.left, chartArea.bottom - chartArea.top);
    },
  };
}

/** The heatmap panel: `data-testid="heatmap"`, `data-points` = cells drawn, `data-module`, `data-round`. */
export class HeatmapPanel {
  readonly box: HTMLDivElement;
  private readonly caption: HTMLParagraphElement;
  private readonly matrix: Chart<'scatter', CellPoint[]>;
  private readonly bar: Chart<'scatter'>;
  private map: HeatmapView | null = null;

  constructor(parent: HTMLElement, private theme: ChartTheme) {
    this.box = document.createElement('div');
    this.box.className = 'heatmap';
    this.box.id = 'heatmap';
    this.box.dataset.testid = 'heatmap';
    this.box.dataset.points = '0';
    parent.append(this.box);
    const row = document.createElement('div');
    row.className = 'heatmap-row';
    this.box.append(row);
    const main = chartContainer(row, 'heatmap-matrix', 'update heatmap');
    main.box.classList.add('heatmap-matrix');
    const barBox = chartContainer(row, 'heatmap-colorbar', 'colour scale');
    barBox.box.classList.add('heatmap-colorbar');
    this.caption = document.createElement('p');
    this.caption.className = 'caption';
    this.box.append(this.caption);
    this.matrix = new Chart<'scatter', CellPoint[]>(main.canvas, this.matrixConfig());
    this.bar = new Chart(barBox.canvas, this.barConfig());
  }

  /** Shows a module's heatmap, or an empty frame with a hint. */
  set(map: HeatmapView | null): void {
    this.map = map;
    const cells = map === null ? 0 : map.values.filter((v) => v !== null).length;
    this.box.dataset.points = String(cells);
    this.box.dataset.module = map?.module ?? '';
    this.box.dataset.round = map === null ? '' : String(map.round);
    this.box.classList.toggle('is-empty', cells === 0);
    // Module names come from peers: text only.
    this.caption.textContent = caption(map);
    this.matrix.data = { datasets: [this.cellDataset()] };
    this.matrix.options = this.matrixConfig().options!;
    this.matrix.update('none');
    this.bar.options = this.barConfig().options!;
    this.bar.update('none');
  }

  /** Re-styles both charts after a theme change. */
  setTheme(theme: ChartTheme): void {
    this.theme = theme;
    this.set(this.map);
  }

  private cellDataset(): ChartConfiguration<'scatter', CellPoint[]>['data']['datasets'][number] {
    const map = this.map;
    const data: CellPoint[] = [];
    if (map !== null) { for (let i = 0; i < map.rows; i++) for (let j = 0; j < map.cols; j++) data.push({ x: j + 0.5, y: i + 0.5, v: map.values[i * map.cols + j] }); }
    return { label: 'update', data, pointRadius: 0, pointHoverRadius: 0, pointHitRadius: 6, backgroundColor: 'transparent', borderColor: 'transparent' };
  }

  private matrixConfig(): ChartConfiguration<'scatter', CellPoint[]> {
    const rows = this.map?.rows ?? 1;
    const cols = this.map?.cols ?? 1;
    const ticks = { ...tickStyle(this.theme), precision: 0, stepSize: Math.max(1, Math.ceil(Math.max(rows, cols) / 8)) };
    return {
      type: 'scatter',
      data: { datasets: [this.cellDataset()] },
      plugins: [cellsPlugin(() => ({ map: this.map, theme: this.theme }))],
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: axis(this.theme, 'input block', { type: 'linear', min: 0, max: cols, ticks, grid: { display: false } }) as never,
          y: axis(this.theme, 'output block', { type: 'linear', min: 0, max: rows, reverse: true, ticks, grid: { display: false } }) as never,
        },
        plugins: {
          legend: { display: false },
          title: { display: false },
          tooltip: {
            backgroundColor: toCss(this.theme.background, 0.95),
            titleColor: toCss(this.theme.foreground),
            bodyColor: toCss(this.theme.foreground),
            borderColor: toCss(this.theme.border, 0.8),
            borderWidth: 1,
            callbacks: {
              title: () => '',
              label: (item) => {
                const p = item.raw as CellPoint;
                return `row ${Math.floor(p.y)}, col ${Math.floor(p.x)}: ${p.v === null ? 'n/a' : p.v.toExponential(3)}`;
              },
            },
          },
        },
      },
    };
  }

  private barConfig(): ChartConfiguration<'scatter'> {
    const scale = this.scale();
    return {
      type: 'scatter',
      data: { datasets: [{ data: [] }] },
      plugins: [gradientPlugin(() => ({ theme: this.theme, scale: this.scale() }))],
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { display: false, min: 0, max: 1 },
          y: axis(this.theme, '', { type: 'linear', position: 'right', min: scale.min, max: scale.max, ticks: { ...tickStyle(this.theme), maxTicksLimit: 5, callback: (v: number | string) => compact(Number(v)) },
            grid: { display: false } }) as never,
        },
        plugins: { legend: { display: false }, title: { display: false }, tooltip: { enabled: false } },
      },
    };
  }

  private scale(): Scale {
    return this.map === null ? { min: 0, max: 1, signed: false } : heatmapScale(this.map);
  }

  /** Releases the charts. */
  dispose(): void {
    this.matrix.destroy();
    this.bar.destroy();
  }
}
