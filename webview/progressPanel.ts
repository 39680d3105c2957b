/**
 * The round-progress panel: round n/N and phase, a progress bar, how many sampled clients
 * reported, a clients table (status, local step, last loss, examples) and the latest notes.
 * `data-testid="round-progress"` carries `data-round`, `data-total-rounds`, `data-phase`.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import '@vscode-elements/elements/dist/vscode-table/index.js';
import '@vscode-elements/elements/dist/vscode-table-body/index.js';
import '@vscode-elements/elements/dist/vscode-table-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-header/index.js';
import '@vscode-elements/elements/dist/vscode-table-header-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-row/index.js';
import { activeRun, type FederationState, type RunState } from '../src/extension/state/federationState.js';
import { CONNECTION_PHASES, type FederationPhase } from '../src/extension/state/phases.js';
import { el, setText } from './dom.js';
import { privacySummary, progress } from './series.js';

/** The phases as the panel says them (the sidebar shows their names). */
const PHASE_TEXT: Readonly<Record<FederationPhase, string>> = {
  idle: 'not joined',
  starting: 'starting',
  connecting: 'connecting',
  reconnecting: 'reconnecting',
  disconnected: 'disconnected',
  waiting: 'waiting for clients',
  ready: 'ready — run FedEx: Start Round',
  training: 'local training',
  uploaded: 'update sent',
  aggregating: 'aggregating',
  closed: 'round closed',
  done: 'done',
  stopped: 'stopped',
  failed: 'failed',
};

/** Phases in which a live federation is busy (the ring turns). */
const BUSY: ReadonlySet<FederationPhase> = new Set(['waiting', 'training', 'uploaded', 'aggregating', 'closed']);

function fmt(v: number | null, digits = 4): string {
  return v === null ? '–' : Number(v.toPrecision(digits)).toString();
}

/** The progress panel; `update` re-renders it from a run. */
export class ProgressPanel {
  readonly box: HTMLElement;
  private readonly headline = el('span', { class: 'headline', 'data-testid': 'round-label' });
  private readonly phase = el('vscode-badge', { 'data-testid': 'phase-badge' });
  private readonly reported = el('span', { class: 'muted', 'data-testid': 'clients-reported' });
  /** Client-level DP: ε spent so far (`data-epsilon`), hidden for a federation without DP. */
  private readonly privacy = el('span', { class: 'muted', 'data-testid': 'privacy-spent' });
  private readonly ring = el('vscode-progress-ring', { class: 'ring' });
  private readonly bar = el('vscode-progress-bar', { 'aria-label': 'federation progress' });
  private readonly body = el('vscode-table-body', { slot: 'body' });
  private readonly notes = el('ul', { class: 'notes', 'data-testid': 'notes' });
  private readonly table: HTMLElement;

  constructor(parent: HTMLElement) {
    const table =
      (this.table = el('vscode-table', { 'data-testid': 'clients-table', 'bordered-rows': '', zebra: '', columns: '["30%","16%","18%","18%","18%"]' },
        el('vscode-table-header', { slot: 'header' }, ...['client', 'status', 'step', 'last loss', 'examples'].map((h) => el('vscode-table-header-cell', {}, h))), this.body));
    this.box = el('section', { class: 'progress', id: 'round-progress', 'data-testid': 'round-progress' }, el('div', { class: 'progress-line' }, this.headline, this.phase, this.reported, this.privacy, this.ring), this.bar, table,
      this.notes);
    parent.append(this.box);
  }

  /** Shows a run (or nothing). */
  update(view: FederationState | null, run: RunState | null): void {
    if (run === null || view === null) {
      setText(this.headline, 'No federation yet');
      this.box.dataset.round = '0';
      this.box.dataset.totalRounds = '';
      this.box.dataset.phase = 'pending';
      this.ring.hidden = true;
      this.privacy.hidden = true;
      this.body.replaceChildren();
      this.notes.replaceChildren();
      return;
    }
    const p = progress(run);
    const method = run.key === '' ? '' : `${run.key}: `;
    setText(this.headline, `${method}Round ${p.round}${p.totalRounds === null ? '' : ` / ${p.totalRounds}`}`);
    // A joined client's connection is the federation's, not its run's: it shows on the active run.
    const phase = run === activeRun(view) && CONNECTION_PHASES.has(view.phase) ? view.phase : p.phase;
    setText(this.phase, PHASE_TEXT[phase]);
    setText(this.reported, p.sampled === 0 ? '' : `${p.reported}/${p.sampled} clients reported${p.failed > 0 ? `, ${p.failed} failed` : ''}${p.quorum === null ? '' : ` (quorum ${p.quorum})`}`);
    this.box.dataset.round = String(p.round);
    this.box.dataset.totalRounds = p.totalRounds === null ? '' : String(p.totalRounds);
    this.box.dataset.phase = phase;
    const dp = privacySummary(run);
    this.privacy.hidden = dp === null;
    this.privacy.dataset.epsilon = dp === null ? '' : dp.epsilon === null ? 'Infinity' : String(dp.epsilon);
    setText(this.privacy, dp === null ? '' : `DP ε = ${dp.epsilon === null ? '∞' : fmt(dp.epsilon)}${dp.delta === null ? '' : ` at δ = ${dp.delta}`} after ${dp.releases ?? '?'} round${dp.releases === 1 ? '' : 's'}`
      + `${dp.clipped === null ? '' : `, ${dp.clipped}/${dp.updates} clipped last round`}`);
    this.ring.hidden = !(view.live && BUSY.has(phase));
    if (p.fraction === null) {
      this.bar.indeterminate = view.live && p.phase !== 'done';
      this.bar.value = undefined;
    } else {
      this.bar.indeterminate = false;
      this.bar.max = 100;
      this.bar.value = Math.round(p.fraction * 100);
    }
    this.body.replaceChildren(...run.clients.map((c) => {
      const step = c.step === null ? '–' : c.totalSteps === null ? String(c.step) : `${c.step}/${c.totalSteps}`;
      // Client names come from peers: text cells only.
      return el('vscode-table-row', { 'data-client': c.id },
        ...[c.name === c.id ? c.id : `${c.name} (${c.id})`, c.connected ? c.status : `${c.status}, offline`, step, fmt(c.lastLoss), c.examples === null ? '–' : String(c.examples)]
          .map((t) => el('vscode-table-cell', {}, t)));
    }));
    this.table.hidden = run.clients.length === 0;
    // The table sizes its scroll area from its own height (CSSOM, not an inline style attribute).
    this.table.style.height = `${30 + 24 * Math.min(run.clients.length, 8)}px`;
    this.notes.replaceChildren(...view.notes.slice(-5).map((n) => el('li', { class: `note-${n.level}` }, `${new Date(n.time).toLocaleTimeString()} ${n.text}`)));
  }
}
