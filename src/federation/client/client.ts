/**
 * The federation client: connects (retrying with backoff), says hello, keeps its float32 base copy
 * at the coordinator's revision, trains each round it is sampled for through an injected
 * `LocalTrainer`, uploads, and on a lost connection reconnects and carries on — the round it was
 * training for if that is still open (a finished training result is uploaded then), else the next.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { ProductBackend } from '../../core/product.js';
import { createOrtProductBackend } from '../../runtime/kernels/factoredUpdate.js';
import { backoffDelay, sleep } from '../transport/backoff.js';
import { connectWithRetry, type RetryOptions } from '../transport/client.js';
import { TransportError, type ConnectOptions } from '../transport/types.js';
import { DEFAULT_LIMITS } from '../protocol/constants.js';
import type { FloatWireDType } from '../protocol/dtypes.js';
import type { ParamsOf } from '../protocol/messages.js';
import type { AdapterLayout } from '../protocol/adapterTensors.js';
import { BaseCopy } from './baseCopy.js';
import { type BaseSource } from '../shared/baseWeights.js';
import { ClientConnection, type ConnectionOutcome } from './clientConnection.js';
import { ClientError } from './errors.js';
import { clientCredential, type ClientCredential } from './credentials.js';
import type { ClientIdentity } from '../shared/identityFiles.js';
import type { FederationSettings, LocalTrainer, TrainResult } from './trainer.js';
import type { Adapter } from '../../core/lora.js';

/** Options of a federation client. */
export interface FederationClientOptions {
  /** Coordinator URL (`ws://…` or `wss://…`). */
  readonly url: string;
  /** The federation's shared join token (trial mode); absent when `identity` is given. */
  readonly token?: string;
  /** The client's own key (protocol 1.2): its client id is the identity's. */
  readonly identity?: ClientIdentity;
  /** Display name (plain text). */
  readonly name: string;
  /** Stable id kept across reconnects (default: random per client object). */
  readonly clientId?: string;
  /** Where training runs: cpu, cuda, … (default cpu). */
  readonly device?: string;
  /** The pristine base model: hash and the adapted modules' weights. */
  readonly base: BaseSource;
  readonly trainer: LocalTrainer;
  /** Fused base updates (default: onnxruntime); use the coordinator's to hold the same bits. */
  readonly backend?: ProductBackend;
  /**
   * The LoRA rank this client trains at (protocol 1.3): one the coordinator allows, at most its global
   * rank; absent: the global rank. Each round starts from the global adapter truncated to it.
   */
  readonly rank?: number;
  /** Accept factored (P, Q) residuals (default true). */
  readonly factoredResidual?: boolean;
  /** Dtypes this client can upload in (default float32 only). */
  readonly uplinkDtypes?: readonly FloatWireDType[];
  /** Largest frame accepted (default 64 MiB). */
  readonly maxFrameBytes?: number;
  /** Transport heartbeat (WebSocket pings) in ms (default 5000). */
  readonly heartbeatMs?: number;
  /** Reconnect spacing; `maxAttempts` bounds consecutive failed attempts (default: unbounded). */
  readonly reconnect?: Omit<RetryOptions, 'onRetry'>;
  readonly tls?: ConnectOptions['tls'];
  readonly signal?: AbortSignal;
}

/** How a client's federation ended. */
export interface ClientOutcome {
  readonly reason: 'completed' | 'stopped' | 'failed' | 'left';
  readonly roundsCompleted: number;
  /** The final global adapter (absent when the client left before federation_done). */
  readonly global: Adapter | null;
  /** Base revision and weights the client ends with (the coordinator's final base after federation_done); null when it was never welcomed. */
  readonly baseRevision: number;
  readonly base: BaseCopy | null;
  /** Rounds this client uploaded an accepted update for. */
  readonly roundsParticipated: number;
}

/** Events of a client. */
export interface ClientEventMap {
  connected: [{ readonly url: string }];
  joined: [{ readonly sessionId: string; readonly currentRound: number; readonly config: FederationSettings; readonly protocolMinor: number }];
  round_started: [{ readonly round: number; readonly baseRevision: number; readonly updatedModules: readonly string[] }];
  trained: [{ readonly round: number; readonly result: TrainResult; readonly durationMs: number }];
  training_failed: [{ readonly round: number; readonly message: string }];
  uploaded: [{ readonly round: number; readonly bytes: number }];
  update_acked: [{ readonly round: number }];
  update_rejected: [{ readonly round: number; readonly code: string; readonly reason: string }];
  round_closed: [ParamsOf<'round_closed'>];
  protocol_error: [{ readonly code: string; readonly message: string }];
  disconnected: [{ readonly code: number; readonly reason: string }];
  reconnecting: [{ readonly attempt: number; readonly delayMs: number; readonly message: string }];
  done: [ClientOutcome];
}

/** A training run for one round; it survives reconnects so a finished result can still be uploaded. */
export interface TrainingJob {
  readonly round: number;
  readonly controller: AbortController;
  result?: TrainResult;
  failed?: boolean;
  /** Why the training (or encoding its adapter) failed. */
  failure?: string;
}

/** A federation client. `run()` drives it to the end of the federation. */
export class FederationClient extends EventEmitter<ClientEventMap> {
  readonly clientId: string;
  /** What the hello proves identity with. */
  readonly credential: ClientCredential;
  readonly backend: ProductBackend;
  private readonly ownsBackend: boolean;
  private baseCopy: BaseCopy | undefined;
  private resumeSessionId: string | undefined;
  private stopRequested: string | undefined;
  private killed = false;
  /** The connection uploads go to (internal). */
  connection: ClientConnection | undefined;
  /** The current or last training job (internal). */
  job: TrainingJob | undefined;
  /** Rounds with an acknowledged upload. */
  participated = 0;

  constructor(readonly options: FederationClientOptions) {
    super();
    this.credential = clientCredential(options);
    this.clientId = options.identity?.clientId ?? options.clientId ?? `client-${randomBytes(8).toString('hex')}`;
    this.backend = options.backend ?? createOrtProductBackend();
    this.ownsBackend = options.backend === undefined;
  }

  /** The base copy (loaded at the first welcome, for exactly the federation's layout). */
  get base(): BaseCopy {
    if (this.baseCopy === undefined) throw new ClientError('C_ABORTED', `client ${this.options.name}: no welcome yet, so no base is loaded`);
    return this.baseCopy;
  }

  /** The base revision held (0 before the base is loaded: the pristine base). */
  get baseRevision(): number {
    return this.baseCopy?.revision ?? 0;
  }

  /**
   * The base copy for a welcome's layout: loaded from the source at the first welcome, kept across
   * reconnects to the same federation, reloaded (pristine) when the layout differs. The modules
   * loaded, and so every base override the trainer gets, are exactly the layout's.
   */
  async baseFor(layout: AdapterLayout): Promise<BaseCopy> {
    if (this.baseCopy === undefined || !this.baseCopy.sameLayout(layout)) this.baseCopy = await BaseCopy.load(this.options.base, layout);
    return this.baseCopy;
  }

  /** Leaves the federation: sends `leave`, closes, and `run()` resolves with reason `left`. */
  async leave(reason = 'leaving'): Promise<void> {
    this.stopRequested = reason;
    this.job?.controller.abort();
    await this.connection?.leave(reason);
  }

  /** Drops the connection abruptly (no close handshake), as a network failure would; the client reconnects. For tests and drills. */
  dropConnection(): void {
    this.connection?.terminate();
  }

  /** Stops abruptly, as a crash would: the socket is destroyed, no `leave`, and `run()` rejects `C_ABORTED`. */
  kill(): void {
    this.killed = true;
    this.job?.controller.abort();
    this.connection?.terminate();
  }

  /** Runs until federation_done (resolves), a fatal rejection (rejects `ClientError`), or `leave()`. */
  async run(): Promise<ClientOutcome> {
    const o = this.options;
    let failedSessions = 0;
    try {
      for (;;) {
        if (o.signal?.aborted || this.killed) throw new ClientError('C_ABORTED', `client ${o.name}: ${this.killed ? 'killed' : 'aborted'}`);
        if (this.stopRequested !== undefined) return this.finish({ reason: 'left', roundsCompleted: 0, global: null });
        if (failedSessions > 0) await sleep(backoffDelay(failedSessions - 1, o.reconnect), o.signal);
        const conn = await connectWithRetry(o.url, {
          maxFrameBytes: o.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes,
          heartbeatMs: o.heartbeatMs,
          tls: o.tls,
          signal: o.signal,
        }, {
          ...o.reconnect,
          onRetry: (attempt, delayMs, error) => this.emit('reconnecting', { attempt, delayMs, message: error.message }),
        });
        this.emit('connected', { url: o.url });
        this.connection = new ClientConnection(conn, this, this.resumeSessionId);
        const outcome: ConnectionOutcome = await this.connection.run();
        this.connection = undefined;
        if (outcome.sessionId !== undefined) this.resumeSessionId = outcome.sessionId;
        if (outcome.kind === 'done') return this.finish(outcome);
        if (outcome.kind === 'fatal') throw outcome.error;
        if (this.stopRequested !== undefined || this.killed) continue;
        this.emit('disconnected', { code: outcome.code, reason: outcome.reason });
        failedSessions = outcome.welcomed ? 1 : failedSessions + 1;
        if (outcome.retryAfterMs !== undefined) await sleep(outcome.retryAfterMs, o.signal);
      }
    } catch (err) {
      this.job?.controller.abort();
      if (err instanceof TransportError) {
        throw err.code === 'T_ABORTED'
          ? new ClientError('C_ABORTED', `client ${o.name}: aborted`, { cause: err })
          : new ClientError('C_CONNECT', `client ${o.name}: cannot reach ${o.url}: ${err.message}`, { cause: err });
      }
      throw err;
    } finally {
      if (this.ownsBackend) await this.backend.dispose?.();
    }
  }

  private finish(o: { reason: ClientOutcome['reason']; roundsCompleted: number; global: Adapter | null }): ClientOutcome {
    const outcome: ClientOutcome = { reason: o.reason, roundsCompleted: o.roundsCompleted, global: o.global, baseRevision: this.baseRevision, base: this.baseCopy ?? null, roundsParticipated: this.participated };
    this.emit('done', outcome);
    return outcome;
  }
}
