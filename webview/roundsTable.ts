/**
 * The rounds table (`data-testid="rounds-table"`): one row per closed round of the selected run
 * with its participants, mean loss, eval loss, mean relative deviation, duration and traffic.
 */
import '@vscode-elements/elements/dist/vscode-table/index.js';
import '@vscode-elements/elements/dist/vscode-table-body/index.js';
import '@vscode-elements/elements/dist/vscode-table-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-header/index.js';
import '@vscode-elements/elements/dist/vscode-table-header-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-row/index.js';
import type { RunState } from '../src/extension/state/federationState.js';
import { el } from './dom.js';
import { roundRows } from './series.js';

function fmt(v: number | null, digits = 4): string {
  return v === null ? '–' : Number(v.toPrecision(digits)).toString();
}

function bytes(v: number | null): string {
  if (v === null) return '–';
  if (v < 1024) return `${v} B`;
  return v < 1024 * 1024 ? `${(v / 1024).toFixed(1)} KiB` : `${(v / 1024 / 1024).toFixed(1)} MiB`;
}

/** The table; `update` re-renders its rows. */
export class RoundsTable {
  private readonly body = el('vscode-table-body', { slot: 'body' });
  private readonly header = el('vscode-table-header', { slot: 'header' });
  private readonly table: HTMLElement;

  constructor(parent: HTMLElement) {
    this.table = el('vscode-table', { 'data-testid': 'rounds-table', id: 'rounds-table', 'bordered-rows': '', zebra: '' }, this.header, this.body);
    this.setHeader(false);
    parent.append(this.table);
  }

  /** The column headers; a `DP ε` column for a run with client-level DP. */
  private setHeader(privacy: boolean): void {
    const names = ['round', 'clients', 'mean loss', 'eval loss', 'deviation', ...(privacy ? ['DP ε'] : []), 'time', 'traffic'];
    this.header.replaceChildren(...names.map((h) => el('vscode-table-header-cell', {}, h)));
  }

  /** Shows the rounds of a run (newest first). */
  update(run: RunState | null): void {
    const rows = run === null ? [] : roundRows(run).reverse();
    const privacy = rows.some((r) => r.epsilon !== undefined);
    this.setHeader(privacy);
    this.table.dataset.rows = String(rows.length);
    this.body.replaceChildren(
      ...rows.map((r) =>
        el('vscode-table-row', { 'data-round': String(r.round) },
          ...[String(r.round), r.aggregated ? String(r.participants) : `${r.participants} (not aggregated)`, fmt(r.meanLoss), fmt(r.evalLoss), fmt(r.meanRelativeDeviation, 3),
            ...(privacy ? [r.epsilon === undefined ? '–' : r.epsilon === null ? '∞' : fmt(r.epsilon)] : []), r.durationMs === null ? '–' : `${(r.durationMs / 1000).toFixed(2)} s`, bytes(r.bytes)].map((t) => el('vscode-table-cell', {}, t)))
      ),
    );
    this.table.style.height = `${30 + 24 * Math.min(Math.max(rows.length, 1), 12)}px`;
  }
}
