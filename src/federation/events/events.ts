/**
 * The JSONL event stream of `fedex simulate`, `fedex host` and `fedex join` (`--events <file|->`),
 * declared once for the CLI, the VS Code extension and the dashboard.
 *
 * One event per line: `{"type": "<name>", "time": <ms since epoch>, ...payload}`. The stream carries
 * every coordinator event (`CoordinatorEventMap`, src/federation/coordinator/events.ts) unchanged,
 * plus the simulation-level events (`SimulationEventMap`) and the events of a joining client
 * (`JoinEventMap`). In `simulate`, every event also carries `method` (the federation it belongs
 * to: fedex, fedit, ffa or centralized). Numbers that are not finite are written as `null`.
 * Readers must ignore event types they do not know (a newer CLI may add some).
 */
import type { CoordinatorEventMap, CoordinatorEventName } from '../coordinator/events.js';
import type { ModelFetchProgress } from '../client/modelFetch.js';
import type { DataReport } from '../../trainer/data/report.js';

/** A compared method: the federated strategies and the centralized reference. */
export type SimulationMethod = 'fedex' | 'fedit' | 'ffa' | 'flora' | 'fedsb' | 'centralized';

/** Every method `simulate` can run, in its default order. */
export const SIMULATION_METHODS: readonly SimulationMethod[] = ['fedex', 'fedit', 'ffa', 'flora', 'fedsb', 'centralized'];

/** Final figures of one method (also the rows of the comparison table and of report.json). */
export interface MethodSummary {
  readonly method: SimulationMethod;
  /** Eval loss of the final global model on the held-out eval set. */
  readonly evalLoss: number;
  /** Token (causal LM) or label (classification) accuracy; null when the task has none. */
  readonly evalAccuracy: number | null;
  /** Share of eval examples whose whole completion is predicted exactly; null when not measured. */
  readonly exactMatch: number | null;
  /** Mean over rounds and modules of ‖s·ΔR‖_F / ‖s·Σ wᵢBᵢAᵢ‖_F; null for centralized. */
  readonly meanRelativeDeviation: number | null;
  /** Protocol bytes the coordinator sent and received over the whole federation (0 for centralized). */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Wall time of this method's run. */
  readonly seconds: number;
}

/** Events of the simulation itself (payloads). */
export interface SimulationEventMap {
  simulation_started: {
    readonly methods: readonly SimulationMethod[];
    readonly clients: number;
    readonly rounds: number;
    readonly localSteps: number;
    /** Model folder, or `synthetic` for the model-free trainer. */
    readonly model: string;
    /** Data spec (`task:NAME` or a JSONL path). */
    readonly data: string;
    /** Output folder. */
    readonly out: string;
    readonly rank: number;
    readonly alpha: number;
    readonly seed: number;
  };
  method_started: { readonly method: SimulationMethod };
  /** A local training step finished (throttled: at most a few per second per client). */
  client_progress: {
    readonly method?: SimulationMethod;
    readonly clientId: string;
    readonly round: number;
    readonly step: number;
    readonly totalSteps: number;
    readonly loss: number;
  };
  /** A client finished its local training for a round (before uploading). */
  client_round_done: {
    readonly method?: SimulationMethod;
    readonly clientId: string;
    readonly round: number;
    readonly trainLoss: number;
    readonly examples: number;
    readonly steps: number;
    readonly seconds: number;
  };
  /** The global model after a round, evaluated on the held-out eval set (the loss-per-round chart). */
  round_evaluated: {
    readonly method: SimulationMethod;
    readonly round: number;
    readonly evalLoss: number;
    readonly evalAccuracy: number | null;
    readonly exactMatch: number | null;
  };
  method_done: MethodSummary;
  simulation_done: { readonly reportJson: string; readonly reportHtml: string };
  /** A failure that ends the command (its message is also printed). */
  error: { readonly message: string };
}

/** Events of `fedex join` (the client's view; the coordinator's events are not visible to it). */
export interface JoinEventMap {
  join_connected: { readonly url: string };
  join_welcomed: { readonly clientId: string; readonly sessionId: string; readonly currentRound: number };
  join_reconnecting: { readonly attempt: number; readonly delayMs: number; readonly message: string };
  join_disconnected: { readonly code: number; readonly reason: string };
  join_round_started: { readonly round: number; readonly baseRevision: number; readonly updatedModules: number };
  join_uploaded: { readonly round: number; readonly bytes: number };
  join_update_acked: { readonly round: number };
  join_update_rejected: { readonly round: number; readonly code: string; readonly reason: string };
  /** This client's training for the round failed (the coordinator was told with client_failed). */
  join_training_failed: { readonly clientId: string; readonly round: number; readonly message: string };
  join_round_closed: { readonly round: number; readonly participants: number; readonly aggregated: boolean; readonly meanLoss: number | null; readonly meanRelativeDeviation: number | null };
  join_done: { readonly reason: 'completed' | 'stopped' | 'failed' | 'left'; readonly roundsCompleted: number; readonly roundsParticipated: number; readonly baseRevision: number };
  /**
   * Fetching the coordinator's base model (no --model): offered, cached (found in the model cache),
   * waiting (another process fetches it), progress (throttled), verified (fetched and checked).
   */
  join_model: ModelFetchProgress;
  /**
   * What encoding did to this client's data when its trainer was built: `train`/`eval` counts of
   * records cut at `seqLen` (and tokens dropped), and whether training examples were packed.
   */
  join_data: { readonly clientId: string } & DataReport;
}

/** Payload of every coordinator event, by name. */
export type CoordinatorEventPayloads = { readonly [K in CoordinatorEventName]: CoordinatorEventMap[K][0] };

/** Every event of the stream and its payload. */
export type CliEventMap = CoordinatorEventPayloads & SimulationEventMap & JoinEventMap;

/** An event name of the stream. */
export type CliEventType = keyof CliEventMap;

/** One line of the stream, for one event type. */
export type CliEventOf<K extends CliEventType> = { readonly type: K; readonly time: number; readonly method?: SimulationMethod } & CliEventMap[K];

/** One line of the stream (a discriminated union on `type`). */
export type CliEvent = { [K in CliEventType]: CliEventOf<K> }[CliEventType];

// Exhaustive by construction: adding a coordinator event without listing it here is a type error.
const COORDINATOR_TYPES: Record<CoordinatorEventName, true> = {
  listening: true,
  client_joined: true,
  client_left: true,
  client_rejected: true,
  round_ready: true,
  round_started: true,
  update_accepted: true,
  update_rejected: true,
  client_failed: true,
  round_closed: true,
  round_broadcast: true,
  update_heatmap: true,
  model_transfer: true,
  protocol_error: true,
  federation_done: true,
  warning: true,
};

/** The coordinator's event types (what `simulate` and `host` forward). */
export const COORDINATOR_EVENT_TYPES: readonly CoordinatorEventName[] = Object.keys(COORDINATOR_TYPES) as CoordinatorEventName[];

/** JSON has no NaN or ∞: written as null. */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

/** Serialises one event as a line (with the trailing newline). `method`, when given, is added to the payload. */
export function formatEventLine<K extends CliEventType>(type: K, payload: CliEventMap[K], options: { time?: number; method?: SimulationMethod } = {}): string {
  const line = { type, time: options.time ?? Date.now(), ...(options.method !== undefined ? { method: options.method } : {}), ...payload };
  return `${JSON.stringify(line, jsonSafe)}\n`;
}

/**
 * Parses one line of the stream. Returns null for a blank line; throws a `SyntaxError` naming the
 * problem for a line that is not a JSON object with a string `type` and a numeric `time`. Lines of
 * unknown types are returned as they are (check `event.type` before narrowing).
 * Payload fields are not validated: the stream comes from a local CLI the reader started.
 */
export function parseEventLine(line: string): CliEvent | { readonly type: string; readonly time: number } | null {
  const text = line.trim();
  if (text === '') return null;
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SyntaxError(`event line: expected a JSON object, got ${text.slice(0, 80)}`);
  const record = value as Record<string, unknown>;
  if (typeof record.type !== 'string') throw new SyntaxError('event line: "type" is missing or not a string');
  if (typeof record.time !== 'number') throw new SyntaxError(`event line (${record.type}): "time" is missing or not a number`);
  return record as CliEvent | { readonly type: string; readonly time: number };
}
