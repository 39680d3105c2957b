/**
 * Colour arithmetic for the charts (pure): parse the CSS colours VS Code's theme variables hold,
 * mix them for the heatmap's diverging scale, and give every series a stable colour and dash.
 */

/** An RGBA colour, channels 0..255, alpha 0..1. */
export interface Rgba {
  readonly r: number;
  readonly g: number;
  readonly b: number;
  readonly a: number;
}

/** Parses `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`, `rgb(…)` and `rgba(…)`; null otherwise. */
export function parseColor(text: string): Rgba | null {
  const s = text.trim().toLowerCase();
  const hex = /^#([0-9a-f]{3,8})$/.exec(s);
  if (hex !== null) {
    const h = hex[1];
    if (h.length === 3 || h.length === 4) {
      const [r, g, b, a] = [...h].map((c) => parseInt(c + c, 16));
      return { r, g, b, a: a === undefined ? 1 : a / 255 };
    }
    if (h.length === 6 || h.length === 8) {
      const v = (i: number): number => parseInt(h.slice(i, i + 2), 16);
      return { r: v(0), g: v(2), b: v(4), a: h.length === 8 ? v(6) / 255 : 1 };
    }
    return null;
  }
  const fn = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:[\s,/]+([\d.]+%?))?\s*\)$/.exec(s);
  if (fn === null) return null;
  const alpha = fn[4] === undefined ? 1 : fn[4].endsWith('%') ? Number(fn[4].slice(0, -1)) / 100 : Number(fn[4]);
  return { r: Number(fn[1]), g: Number(fn[2]), b: Number(fn[3]), a: alpha };
}

/** `c` as a CSS `rgba()` string, with its alpha multiplied by `alpha`. */
export function toCss(c: Rgba, alpha = 1): string {
  return `rgba(${Math.round(c.r)}, ${Math.round(c.g)}, ${Math.round(c.b)}, ${+(c.a * alpha).toFixed(3)})`;
}

/** Linear mix of two colours, t = 0 gives `a`, 1 gives `b`. */
export function mix(a: Rgba, b: Rgba, t: number): Rgba {
  const u = Math.min(1, Math.max(0, t));
  return { r: a.r + (b.r - a.r) * u, g: a.g + (b.g - a.g) * u, b: a.b + (b.b - a.b) * u, a: a.a + (b.a - a.a) * u };
}

/**
 * Diverging scale: `value` in [−range, range] → negative colour … middle … positive colour.
 * Null (not finite) values get null (drawn as a hatched/empty cell by the caller).
 */
export function diverging(value: number | null, range: number, negative: Rgba, middle: Rgba, positive: Rgba): Rgba | null {
  if (value === null || !Number.isFinite(value)) return null;
  const t = range > 0 ? Math.max(-1, Math.min(1, value / range)) : 0;
  // √ makes small values visible: residual updates are often dominated by a few cells.
  const s = Math.sign(t) * Math.sqrt(Math.abs(t));
  return s < 0 ? mix(middle, negative, -s) : mix(middle, positive, s);
}

/** Sequential scale: `value` in [0, max] → `low` … `high`, linear; null stays null. */
export function sequential(value: number | null, max: number, low: Rgba, high: Rgba): Rgba | null {
  if (value === null || !Number.isFinite(value)) return null;
  return mix(low, high, max > 0 ? value / max : 0);
}

/** Relative luminance (WCAG), 0 (black) … 1 (white). */
export function luminance(c: Rgba): number {
  const lin = (v: number): number => {
    const x = v / 255;
    return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
}

/** Contrast ratio (WCAG) of two opaque colours, 1 … 21. */
export function contrast(a: Rgba, b: Rgba): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** Names of VS Code's chart colours (`--vscode-charts-<name>`), in the order series take them. */
export const CHART_COLOR_NAMES = ['blue', 'orange', 'green', 'purple', 'yellow', 'red'] as const;
export type ChartColorName = (typeof CHART_COLOR_NAMES)[number];

/** Fixed colours of well-known series keys (methods and module types); others cycle by index. */
const FIXED: Readonly<Record<string, ChartColorName>> = {
  'method:fedex': 'blue',
  'method:fedit': 'orange',
  'method:ffa': 'purple',
  'method:flora': 'yellow',
  'method:fedsb': 'red',
  'method:centralized': 'green',
  'type:q': 'blue',
  'type:k': 'orange',
  'type:v': 'green',
  'type:o': 'purple',
  'type:qkv': 'yellow',
  'type:mlp': 'red',
  a: 'blue',
  b: 'orange',
};

/** A series' colour name and dash pattern: fixed for known keys, else by index (dashed after one cycle). */
export function seriesStyle(key: string, index: number): { readonly color: ChartColorName | 'foreground'; readonly dash: number[] } {
  if (key === 'global' || key === 'eval') return { color: 'foreground', dash: key === 'eval' ? [6, 3] : [] };
  const fixed = Object.hasOwn(FIXED, key) ? FIXED[key] : undefined;
  if (fixed !== undefined) return { color: fixed, dash: key.startsWith('method:') ? [6, 3] : [] };
  const cycle = Math.floor(index / CHART_COLOR_NAMES.length);
  return { color: CHART_COLOR_NAMES[index % CHART_COLOR_NAMES.length], dash: cycle === 0 ? [] : cycle === 1 ? [4, 3] : [1, 3] };
}
