/**
 * The coordinator's event stream, declared once: a typed in-process emitter (for the VS Code
 * extension and the CLI) and the same events, one JSON object per line, in `events.jsonl` of the
 * run directory. Payloads are plain JSON (no tensors, no peer-controlled paths).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { StrategyName } from '../../core/strategies/types.js';

/** Bytes of a round: protocol frames, TCP payload (`wire*`) and the raw tensor bytes they carried. */
export interface TrafficRecord {
  readonly sent: number;
  readonly received: number;
  readonly wireSent: number;
  readonly wireReceived: number;
  readonly rawSent: number;
  readonly rawReceived: number;
}

/** Per-module figures of a round (deviation norms are NaN → null when metrics are off). */
export interface ModuleRoundRecord {
  readonly module: string;
  /** ‖s·ΔR‖_F: what plain averaging loses. */
  readonly deviation: number | null;
  readonly relativeDeviation: number | null;
  /** ‖ΔR‖_F, unscaled. */
  readonly residualNorm: number | null;
  /** How the base update travels (FedEx), or null when the base did not change. */
  readonly residualForm: 'factored' | 'dense' | null;
  readonly residualInnerDim: number;
  /** With --residual-rank: the rank folded, the residual's exact rank, and the share of ‖ΔR‖_F dropped this round. */
  readonly residualTruncation?: { readonly rank: number; readonly exactRank: number; readonly relativeError: number };
  /** ‖Ā_r − Ā_{r−1}‖_F: how far the global lora_A moved this round (absent in records written before it existed). */
  readonly globalDeltaANorm?: number;
  /** ‖B̄_r − B̄_{r−1}‖_F. */
  readonly globalDeltaBNorm?: number;
  /** ‖A_i − Ā_r‖_F per participant, in `RoundRecord.participants` order. */
  readonly clientDeltaANorms?: readonly number[];
  /** ‖B_i − B̄_r‖_F per participant, in `RoundRecord.participants` order. */
  readonly clientDeltaBNorms?: readonly number[];
}

/**
 * One module of an `update_heatmap`: the change of the global effective weight W0 + s·B̄Ā over the
 * round, in `nn.Linear` orientation (out × in, whatever the stored layout), max-|·| pooled: cell
 * (i, j) is the largest |ΔW| over rows [i·poolRows, (i+1)·poolRows) and columns [j·poolCols, …)
 * (edge cells may cover fewer). `values` is null (and `note` says why) when the dense update was
 * too costly to form.
 */
export interface HeatmapModule {
  readonly module: string;
  readonly out: number;
  readonly in: number;
  /** Pooled size: ⌈out / poolRows⌉ × ⌈in / poolCols⌉, at most 32 × 32 (0 × 0 when skipped). */
  readonly rows: number;
  readonly cols: number;
  /** Pooling factors: ⌈out / 32⌉ and ⌈in / 32⌉. */
  readonly poolRows: number;
  readonly poolCols: number;
  /** max |ΔW| over the module. */
  readonly maxAbs: number | null;
  /** ‖ΔW‖_F. */
  readonly norm: number | null;
  /** rows × cols pooled values, row-major, six significant digits. */
  readonly values: readonly number[] | null;
  readonly note?: string;
}

/** The `update_heatmap` event of an aggregated round. */
export interface UpdateHeatmap {
  readonly round: number;
  readonly method: StrategyName;
  /** The first layout modules (at most 64), in layout order. */
  readonly modules: readonly HeatmapModule[];
  /** Layout modules left out by the cap. */
  readonly omittedModules: number;
}

/** Everything known about a closed round; also the entries of the metrics history. */
export interface RoundRecord {
  readonly round: number;
  /** True when at least the quorum delivered and the strategy produced a new global adapter. */
  readonly aggregated: boolean;
  readonly sampled: readonly string[];
  readonly quorum: number;
  /** Client ids whose updates were aggregated, in aggregation order. */
  readonly participants: readonly string[];
  readonly failures: readonly { readonly clientId: string; readonly reason: string }[];
  readonly startedAt: number;
  readonly closedAt: number;
  readonly durationMs: number;
  /**
   * Why it closed: `all_reported` — every sampled client accounted for (delivered, failed, rejected,
   * left), or nobody still working and the quorum delivered; `deadline` — the round's deadline;
   * `stopped` — reserved for a coordinator stopped mid-round (a stopped round is not recorded today).
   */
  readonly closedBy: 'all_reported' | 'deadline' | 'stopped';
  readonly baseRevision: number;
  readonly loss: { readonly mean: number; readonly min: number; readonly max: number } | null;
  readonly clients: Readonly<Record<string, { readonly trainLoss: number; readonly examples: number; readonly weight: number }>>;
  readonly modules: readonly ModuleRoundRecord[];
  readonly traffic: TrafficRecord;
  readonly aggregationMs: number;
  /** The aggregation rule: `mean`, `median` or `trimmed-mean β` (core/robust.ts); absent in records written before it existed. */
  readonly aggregation?: string;
  /** With client-level DP (`--dp-clip`): the round's clipping, noise and the ε spent so far; absent without DP. */
  readonly privacy?: RoundPrivacy;
}

/**
 * Client-level DP figures of a round (privateRound.ts; docs/security.md). ε is what the released
 * global models (adapters and base updates) have spent so far; the other figures are the
 * coordinator's own (they are not sent to clients and are not covered by ε).
 */
export interface RoundPrivacy {
  /** ε spent so far at `delta`, this round included when `released`; null: no bound (noise multiplier 0). */
  readonly epsilon: number | null;
  readonly delta: number;
  /** The Rényi order that gave ε (null when ε is 0 or unbounded). */
  readonly order: number | null;
  /** Rounds that ran the noisy mechanism so far (the accountant's composition count). */
  readonly releases: number;
  /** Whether this round ran the mechanism (it counts even when the result was then rolled back). */
  readonly released: boolean;
  /** Sampling rate the accountant used: 1 (the seeded fixed-size sampling gives no amplification claim). */
  readonly samplingRate: number;
  /** C and σ. */
  readonly clip: number;
  readonly noiseMultiplier: number;
  /** m: the fixed denominator, the number of clients sampled this round. */
  readonly denominator: number;
  /** σ·C/m: the noise std added to every released coordinate (0 when not released). */
  readonly noiseStd: number;
  /** Participants whose update was scaled down to norm C. */
  readonly clipped: number;
  /** Each participant's update norm before clipping, in `participants` order (to choose C). */
  readonly updateNorms: readonly number[];
}

/** Every event and its payload. */
export interface CoordinatorEventMap {
  listening: [{ readonly url: string; readonly runDir: string; readonly resumedFromRound: number | null; readonly method: StrategyName; readonly rounds: number }];
  /** `certificate`: the subject of the client certificate it connected with (mutual TLS, `ServerTlsOptions.clientCa`). */
  client_joined: [{ readonly clientId: string; readonly name: string; readonly sessionId: string; readonly resumed: boolean; readonly clients: number; readonly certificate?: string }];
  client_left: [{ readonly clientId: string; readonly name: string; readonly reason: string; readonly clients: number }];
  client_rejected: [{ readonly remote: string; readonly code: string; readonly message: string }];
  /**
   * Manual rounds only: `minClients` have joined and round `round` waits for the operator's grant
   * (`Coordinator.startNextRound`). Published once per round, when the wait for the grant begins.
   */
  round_ready: [{ readonly round: number; readonly clients: number; readonly minClients: number }];
  round_started: [{ readonly round: number; readonly sampled: readonly string[]; readonly quorum: number; readonly deadline: number; readonly baseRevision: number }];
  update_accepted: [{ readonly round: number; readonly clientId: string; readonly examples: number; readonly trainLoss: number; readonly bytes: number }];
  update_rejected: [{ readonly round: number; readonly clientId: string; readonly code: string; readonly reason: string }];
  client_failed: [{ readonly round: number; readonly clientId: string; readonly reason: string }];
  round_closed: [RoundRecord];
  /** The broadcast after a round finished: from its last upload to round_closed + the next round_start (or federation_done) handed to every socket. */
  round_broadcast: [{
    readonly round: number;
    readonly overheadMs: number;
    readonly aggregationMs: number;
    readonly persistMs: number;
    readonly clients: number;
    readonly bytes: number;
    /** From the last upload until every frame was handed to its socket (queued; the coordinator's own work). `overheadMs` waits until the sockets accepted the bytes. */
    readonly queuedMs?: number;
  }];
  /** After an aggregated round (computed after its broadcast, off the critical path); see `UpdateHeatmap`. */
  update_heatmap: [UpdateHeatmap];
  /**
   * A client without the base model fetching it (modelServer.ts): `started` at a connection's first
   * model_request; when that connection ends, `finished` (the client has now received every byte of
   * every file, over this and earlier connections; it rejoins with the hash) or `aborted`.
   * `bytesServed` and `requests` count this connection.
   */
  model_transfer: [{ readonly clientId: string; readonly name: string; readonly status: 'started' | 'finished' | 'aborted'; readonly bytesServed: number; readonly requests: number }];
  protocol_error: [{ readonly clientId: string | null; readonly remote: string; readonly code: string; readonly message: string }];
  federation_done: [{ readonly roundsCompleted: number; readonly reason: 'completed' | 'stopped' | 'failed'; readonly baseRevision: number }];
  warning: [{ readonly message: string }];
}

/** An event name. */
export type CoordinatorEventName = keyof CoordinatorEventMap;

/** Appends events to a JSONL file: `{"type": …, "time": …, …payload}` per line. */
export class EventLog {
  private readonly stream: WriteStream;
  private failed: Error | undefined;

  constructor(readonly path: string) {
    this.stream = createWriteStream(path, { flags: 'a', encoding: 'utf8' });
    this.stream.on('error', (err) => (this.failed = err));
  }

  /** Writes one line; a failing log never stops the federation (the error is kept in `error`). */
  write<K extends CoordinatorEventName>(type: K, payload: CoordinatorEventMap[K][0]): void {
    if (this.failed !== undefined || this.stream.destroyed) return;
    this.stream.write(`${JSON.stringify({ type, time: Date.now(), ...payload }, jsonSafe)}\n`);
  }

  get error(): Error | undefined {
    return this.failed;
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.stream.destroyed || this.stream.writableEnded) resolve();
      else this.stream.end(() => resolve());
    });
  }
}

/** JSON has no NaN or ∞: write them as null. */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
