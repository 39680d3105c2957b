/**
 * The chart theme, read from VS Code's CSS variables on the body (`--vscode-foreground`,
 * `--vscode-editor-background`, `--vscode-charts-*`, …), and a watcher that re-reads it when VS Code
 * switches theme (it changes the body's `vscode-light` / `vscode-dark` / `vscode-high-contrast`
 * class and the variables with it).
 */
import { CHART_COLOR_NAMES, parseColor, type ChartColorName, type Rgba } from './colors.js';

/** Resolved colours and sizes the charts use. */
export interface ChartTheme {
  readonly kind: 'light' | 'dark' | 'high-contrast' | 'high-contrast-light';
  readonly foreground: Rgba;
  readonly background: Rgba;
  readonly grid: Rgba;
  readonly border: Rgba;
  readonly charts: Readonly<Record<ChartColorName | 'foreground', Rgba>>;
  readonly fontFamily: string;
  readonly fontSize: number;
  /** Line width of series (thicker in high contrast). */
  readonly lineWidth: number;
}

const FALLBACK_DARK: Readonly<Record<string, string>> = {
  foreground: '#cccccc',
  background: '#1f1f1f',
  blue: '#3794ff',
  orange: '#d18616',
  green: '#89d185',
  purple: '#b180d7',
  yellow: '#cca700',
  red: '#f14c4c',
};
const FALLBACK_LIGHT: Readonly<Record<string, string>> = {
  foreground: '#3b3b3b',
  background: '#ffffff',
  blue: '#1a85ff',
  orange: '#d18616',
  green: '#388a34',
  purple: '#652d90',
  yellow: '#bf8803',
  red: '#e51400',
};

/** The body's theme kind, from VS Code's classes. */
export function themeKind(body: HTMLElement): ChartTheme['kind'] {
  const c = body.classList;
  if (c.contains('vscode-high-contrast-light')) return 'high-contrast-light';
  if (c.contains('vscode-high-contrast')) return 'high-contrast';
  return c.contains('vscode-light') ? 'light' : 'dark';
}

/** Reads the theme from the computed style of `body`. */
export function readTheme(body: HTMLElement): ChartTheme {
  const style = getComputedStyle(body);
  const kind = themeKind(body);
  const fallback = kind === 'light' || kind === 'high-contrast-light' ? FALLBACK_LIGHT : FALLBACK_DARK;
  const color = (vars: string[], fb: string): Rgba => {
    for (const v of vars) {
      const parsed = parseColor(style.getPropertyValue(v));
      if (parsed !== null) return parsed;
    }
    return parseColor(fb)!;
  };
  const foreground = color(['--vscode-charts-foreground', '--vscode-foreground'], fallback.foreground);
  const background = color(['--vscode-editor-background'], fallback.background);
  const highContrast = kind.startsWith('high-contrast');
  const charts = Object.fromEntries(CHART_COLOR_NAMES.map((n) => [n, color([`--vscode-charts-${n}`], fallback[n])])) as Record<ChartColorName, Rgba>;
  const fontSize = Number.parseFloat(style.getPropertyValue('--vscode-font-size'));
  return {
    kind,
    foreground,
    background,
    grid: color(highContrast ? ['--vscode-contrastBorder', '--vscode-charts-lines'] : ['--vscode-charts-lines', '--vscode-panel-border'], fallback.foreground),
    border: color(['--vscode-contrastBorder', '--vscode-panel-border', '--vscode-widget-border'], fallback.foreground),
    charts: { ...charts, foreground },
    fontFamily: style.getPropertyValue('--vscode-font-family').trim() || 'sans-serif',
    fontSize: Number.isFinite(fontSize) && fontSize > 0 ? fontSize : 13,
    lineWidth: highContrast ? 3 : 2,
  };
}

/** Calls `onChange` with the new theme whenever the body's class or style changes. Returns a stop function. */
export function watchTheme(body: HTMLElement, onChange: (theme: ChartTheme) => void): () => void {
  let last = '';
  const observer = new MutationObserver(() => {
    const theme = readTheme(body);
    const signature = JSON.stringify(theme);
    if (signature === last) return;
    last = signature;
    onChange(theme);
  });
  last = JSON.stringify(readTheme(body));
  observer.observe(body, { attributes: true, attributeFilter: ['class', 'style', 'data-vscode-theme-kind'] });
  return () => observer.disconnect();
}
