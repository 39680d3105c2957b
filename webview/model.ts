/**
 * The dashboard model: plain JSON (no Maps, no class instances) so that it survives
 * `acquireVsCodeApi().setState` and a VS Code reload. Everything keyed by something a peer chose
 * (client ids, module names) is an array of records, never an object's keys: a peer named
 * `__proto__` is just a string here.
 */
import type { ModuleType } from '../src/core/moduleNames.js';
import type { DashboardFederation, FederationKind } from '../src/extension/dashboard/messages.js';

/** Notes kept per federation (oldest dropped first). */
export const MAX_NOTES = 50;

/** Version of the saved state; a saved state of another version is dropped. */
export const DASHBOARD_STATE_VERSION = 1;

/** Where a run (one federation, or one method of a simulation) stands; `ready`: a manual round waits for FedEx: Start Round. */
export type RunPhase = 'pending' | 'waiting' | 'ready' | 'training' | 'aggregating' | 'closed' | 'done' | 'stopped' | 'failed';

/** A client as the coordinator (or the simulation) saw it. */
export interface ClientView {
  readonly id: string;
  name: string;
  connected: boolean;
  status: 'idle' | 'training' | 'trained' | 'reported' | 'failed' | 'left';
  step: number | null;
  totalSteps: number | null;
  lastLoss: number | null;
  examples: number | null;
}

/** Figures of one module in one round (null when not measured). */
export interface ModulePoint {
  readonly module: string;
  readonly type: ModuleType;
  readonly layer: number | null;
  readonly deviation: number | null;
  readonly relativeDeviation: number | null;
  readonly residualNorm: number | null;
  /** ‖Ā_t − Ā_{t−1}‖_F and ‖B̄_t − B̄_{t−1}‖_F: how far the global adapter moved this round. */
  readonly deltaA: number | null;
  readonly deltaB: number | null;
}

/** ‖A_i − Ā‖_F, ‖B_i − B̄‖_F of one client and module in one round. */
export interface ClientModuleDiff {
  readonly client: string;
  readonly module: string;
  readonly a: number | null;
  readonly b: number | null;
}

/** Train loss of one client in one round. */
export interface ClientLoss {
  readonly client: string;
  readonly loss: number | null;
  readonly examples: number | null;
}

/** One closed round. */
export interface RoundPoint {
  readonly round: number;
  readonly aggregated: boolean;
  readonly closedAt: number;
  readonly durationMs: number | null;
  readonly meanLoss: number | null;
  /** Mean over modules of the relative deviation (given directly by `join_round_closed`). */
  readonly meanRelativeDeviation: number | null;
  readonly clientLoss: ClientLoss[];
  readonly modules: ModulePoint[];
  readonly clientDiffs: ClientModuleDiff[];
  readonly bytes: number | null;
  /** Client-level DP (the record's `privacy`); absent for a federation without it (and in states saved before it existed). */
  readonly privacy?: PrivacyPoint;
}

/** A round's client-level DP figures: ε spent so far at δ (null ε: no bound), rounds released, updates clipped. */
export interface PrivacyPoint {
  readonly epsilon: number | null;
  readonly delta: number | null;
  readonly releases: number | null;
  readonly clipped: number | null;
  readonly updates: number;
  readonly noiseStd: number | null;
}

/** Eval figures of the global model after a round (simulation). */
export interface EvalPoint {
  readonly round: number;
  readonly loss: number | null;
  readonly accuracy: number | null;
}

/**
 * A pooled (≤ 32×32) picture of one module's round update of the effective weight W0 + s·B̄Ā, in
 * out × in orientation; the coordinator pools max |ΔW| per block (all values ≥ 0).
 */
export interface HeatmapView {
  readonly module: string;
  readonly round: number;
  readonly rows: number;
  readonly cols: number;
  /** Row-major, rows × cols; null cells were not finite. Empty when the coordinator skipped it (see `note`). */
  readonly values: (number | null)[];
  /** Shape of the full update it was pooled from (out × in), when given. */
  readonly sourceRows: number | null;
  readonly sourceCols: number | null;
  /** max |ΔW| and ‖ΔW‖_F of the whole module. */
  readonly maxAbs: number | null;
  readonly norm: number | null;
  /** Why there are no values (e.g. the dense update was too costly to form). */
  readonly note: string | null;
}

/** One run: a hosted federation, a joined one, or one method of a simulation. */
export interface RunView {
  /** Method of a simulation, or '' for a plain federation. */
  readonly key: string;
  phase: RunPhase;
  round: number;
  totalRounds: number | null;
  sampled: string[];
  reported: string[];
  failed: string[];
  quorum: number | null;
  clients: ClientView[];
  rounds: RoundPoint[];
  evals: EvalPoint[];
  /** Latest heatmap per module (only one module's is drawn at a time). */
  heatmaps: HeatmapView[];
  /** method_done's figures (simulation). */
  summary: { readonly evalLoss: number | null; readonly evalAccuracy: number | null; readonly meanRelativeDeviation: number | null; readonly seconds: number | null } | null;
  startedAt: number | null;
  updatedAt: number | null;
}

/** A line shown under the progress panel (warnings, errors, rejected peers). */
export interface NoteView {
  readonly time: number;
  readonly level: 'info' | 'warn' | 'error';
  readonly text: string;
}

/** Everything about one federation. */
export interface FederationView {
  readonly id: string;
  label: string;
  kind: FederationKind;
  live: boolean;
  /** True when kept from a saved state but unknown to the extension now. */
  restored: boolean;
  runs: RunView[];
  /** The run the latest event was about. */
  activeRun: string;
  simulation: { readonly methods: string[]; readonly clients: number | null; readonly rounds: number | null; readonly model: string; readonly data: string } | null;
  notes: NoteView[];
  eventCount: number;
  done: boolean;
}

/** What the user chose (kept across reloads). */
export interface UiChoices {
  /** Run key of the selected federation to detail (null: the active one). */
  run: string | null;
  /** Module of the heatmap (null: the first with a heatmap). */
  module: string | null;
  /** Round of the per-round charts (null: the latest). */
  round: number | null;
  /** Which factor the client-diff chart shows. */
  factor: 'a' | 'b';
}

/** The whole dashboard model. */
export interface DashboardState {
  readonly version: typeof DASHBOARD_STATE_VERSION;
  federations: FederationView[];
  selected: string | null;
  ui: UiChoices;
}

/** An empty dashboard. */
export function createDashboardState(): DashboardState {
  return { version: DASHBOARD_STATE_VERSION, federations: [], selected: null, ui: { run: null, module: null, round: null, factor: 'b' } };
}

/** A new, empty federation view. */
export function createFederationView(info: DashboardFederation): FederationView {
  return { id: info.id, label: info.label, kind: info.kind, live: info.live, restored: false, runs: [], activeRun: '', simulation: null, notes: [], eventCount: 0, done: false };
}

/** A new, empty run. */
export function createRunView(key: string): RunView {
  return {
    key, phase: 'pending', round: 0, totalRounds: null, sampled: [], reported: [], failed: [], quorum: null, clients: [], rounds: [],
    evals: [], heatmaps: [], summary: null, startedAt: null, updatedAt: null,
  };
}

/** The run of `key` ('' for a plain federation), created on first use. */
export function run(view: FederationView, key: string): RunView {
  let r = view.runs.find((x) => x.key === key);
  if (r === undefined) {
    r = createRunView(key);
    view.runs.push(r);
  }
  return r;
}

/** The client `id` of a run, created on first use. */
export function client(r: RunView, id: string, name?: string): ClientView {
  let c = r.clients.find((x) => x.id === id);
  if (c === undefined) {
    c = { id, name: name ?? id, connected: true, status: 'idle', step: null, totalSteps: null, lastLoss: null, examples: null };
    r.clients.push(c);
  }
  if (name !== undefined && name !== '') c.name = name;
  return c;
}

/** Adds a note, keeping the last MAX_NOTES. */
export function note(view: FederationView, time: number, level: NoteView['level'], text: string): void {
  view.notes.push({ time, level, text: text.slice(0, 500) });
  if (view.notes.length > MAX_NOTES) view.notes.splice(0, view.notes.length - MAX_NOTES);
}
