/**
 * One connection of a federation client: hello, then every coordinator message in order through
 * the session state machine — apply the base update, start (or resume) training, upload, answer
 * pings — until the connection ends. Says how it ended so the client knows whether to reconnect.
 */
import { encodeMessage, errorParams, safeText, tryDecodeMessage } from '../protocol/codec.js';
import { DEFAULT_LIMITS, PROTOCOL_MAJOR, PROTOCOL_MINOR } from '../protocol/constants.js';
import type { AnyMessage, AnyOutgoingMessage, Message } from '../protocol/envelope.js';
import { protocolError, type ProtocolError } from '../protocol/errors.js';
import type { Method, ParamsOf } from '../protocol/messages.js';
import { advanceSession, INITIAL_SESSION, type SessionState } from '../protocol/sessionState.js';
import type { Connection } from '../transport/types.js';
import { adapterFromTensors, adapterToTensors, sbAdapterToTensors } from '../shared/adapterWire.js';
import type { FederationClient, TrainingJob } from './client.js';
import { ClientError, rejectionError } from './errors.js';
import { startHeartbeat } from './heartbeat.js';
import { helloCredential, respondToChallenge } from './credentials.js';
import type { Adapter, LoraFactors } from '../../core/lora.js';
import { adapterFormOf, layoutAtRank } from '../protocol/adapterTensors.js';
import { settingsAtRank, truncatedAdapter, truncatedBase } from './rankView.js';
import type { BaseUpdateInfo } from './trainer.js';

/** How a connection ended. */
export type ConnectionOutcome = { readonly sessionId?: string } & (
  | { readonly kind: 'done'; readonly reason: 'completed' | 'stopped' | 'failed'; readonly roundsCompleted: number; readonly global: Adapter }
  | { readonly kind: 'fatal'; readonly error: ClientError }
  | { readonly kind: 'retry'; readonly code: number; readonly reason: string; readonly welcomed: boolean; readonly retryAfterMs?: number }
);

/** Rejections worth retrying: the coordinator is full, restarting, or timed us out. */
const RETRYABLE = new Set(['E_FULL', 'E_SHUTDOWN', 'E_TIMEOUT', 'E_INTERNAL', 'E_THROTTLED']);
const METRIC_KEY = /^[A-Za-z0-9_.:/-]{1,64}$/;
const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

export class ClientConnection {
  private state: SessionState = INITIAL_SESSION;
  private queue: Promise<void> = Promise.resolve();
  private welcome: ParamsOf<'welcome'> | undefined;
  /** Fed-SB: the frozen A and B this connection received in its first global message (docs/protocol.md §5.7). */
  private sbFrozen: Map<string, LoraFactors> | undefined;
  private ending: ConnectionOutcome | undefined;
  private lastSent = Date.now();
  private timer: NodeJS.Timeout | undefined;
  /** The hello sent (a challenge's signature covers its client id, key and base model hash). */
  private hello: ParamsOf<'hello'> | undefined;

  constructor(private readonly conn: Connection, private readonly client: FederationClient, private readonly resumeSessionId: string | undefined) {}

  /** Runs the connection to its end. */
  async run(): Promise<ConnectionOutcome> {
    this.conn.on('frame', (bytes) => {
      this.queue = this.queue.then(() => this.handle(bytes)).catch((err: unknown) => this.internalError(err));
    });
    const o = this.client.options;
    this.send({
      method: 'hello',
      params: {
        protocolMajor: PROTOCOL_MAJOR,
        protocolMinor: PROTOCOL_MINOR,
        ...helloCredential(this.client.credential),
        clientName: safeText(o.name, 64) || 'client',
        clientId: this.client.clientId,
        ...(this.resumeSessionId !== undefined ? { resumeSessionId: this.resumeSessionId } : {}),
        device: o.device ?? 'cpu',
        baseModelHash: o.base.hash,
        baseRevision: this.client.baseRevision,
        ...(o.rank !== undefined ? { rank: o.rank } : {}),
        capabilities: {
          uplinkDtypes: ['float32', ...(o.uplinkDtypes ?? []).filter((d) => d !== 'float32')],
          factoredResidual: o.factoredResidual ?? true,
          modelTransfer: false,
          maxFrameBytes: o.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes,
        },
      },
    });
    const info = await this.conn.closed;
    await this.queue;
    clearInterval(this.timer);
    const sessionId = this.welcome?.sessionId;
    return { ...(this.ending ?? { kind: 'retry', code: info.code, reason: info.reason, welcomed: this.welcome !== undefined }), ...(sessionId !== undefined ? { sessionId } : {}) };
  }

  /** Destroys the socket without a close handshake. */
  terminate(): void {
    this.conn.terminate();
  }

  /** Sends `leave` and closes. */
  async leave(reason: string): Promise<void> {
    if (this.state.phase !== 'closed' && this.conn.isOpen) this.send({ method: 'leave', params: { reason: safeText(reason, 256) } });
    this.conn.close(1000, 'leave');
    await this.conn.closed;
  }

  private send(message: AnyOutgoingMessage): void {
    if (message.method === 'hello') this.hello = message.params;
    const o = { maxFrameBytes: this.welcome?.limits.maxFrameBytes, uplinkDtype: this.welcome?.config.uplinkDtype, layout: this.welcome?.config.layout,
      ...(this.welcome !== undefined ? { adapterForm: adapterFormOf(this.welcome.config.method) } : {}) };
    this.sendFrame(encodeMessage(message, o), message.method, message.params);
  }

  private sendFrame(frame: Uint8Array, method: Method, params: unknown): void {
    this.state = advanceSession(this.state, 'client', { method, params });
    this.lastSent = Date.now();
    this.conn.send(frame).catch(() => undefined);
  }

  private end(outcome: ConnectionOutcome, code: number, reason: string, message?: AnyOutgoingMessage): void {
    this.ending ??= outcome;
    if (message !== undefined && this.conn.isOpen) {
      try {
        this.send(message);
      } catch {
        // Closing anyway.
      }
    }
    this.conn.close(code, reason);
  }

  private internalError(err: unknown): void {
    const error = err instanceof ClientError ? err : new ClientError('E_INTERNAL', `client ${this.client.options.name}: ${(err as Error).message ?? String(err)}`, { cause: err });
    if (error.code === 'C_BASE_LAYOUT' || error.code === 'E_BASE_MISMATCH' || error.code === 'E_RANK') {
      this.end({ kind: 'fatal', error }, 1000, error.code, { method: 'leave', params: { reason: safeText(error.message, 256) } });
      return;
    }
    this.client.emit('protocol_error', { code: error.code, message: error.message });
    this.end({ kind: 'retry', code: 1011, reason: error.message, welcomed: this.welcome !== undefined }, 1011, 'client error');
  }

  private protocolFailure(err: ProtocolError): void {
    this.client.emit('protocol_error', { code: err.code, message: err.message });
    if (this.welcome === undefined) {
      this.end({ kind: 'retry', code: 1008, reason: err.message, welcomed: false }, 1008, err.code);
      return;
    }
    try {
      this.send({ method: 'error', params: errorParams(err, false) });
    } catch {
      // The session is closed; nothing to tell.
    }
  }

  private async handle(bytes: Uint8Array): Promise<void> {
    if (this.state.phase === 'closed') return;
    const maxFrameBytes = this.client.options.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes;
    const decoded = tryDecodeMessage(bytes, {
      receiver: 'client',
      layout: this.welcome?.config.layout,
      limits: { maxFrameBytes },
      viewResiduals: true,
      ...(this.welcome !== undefined ? { adapterForm: adapterFormOf(this.welcome.config.method) } : {}),
    });
    if (!decoded.ok) return this.protocolFailure(decoded.error);
    const message: AnyMessage = decoded.message;
    try {
      this.state = advanceSession(this.state, 'coordinator', message);
    } catch (err) {
      return this.protocolFailure(err as ProtocolError);
    }
    switch (message.method) {
      case 'welcome':
        return this.onWelcome(message);
      case 'challenge':
        return this.onChallenge(message.params);
      case 'reject':
        return this.onReject(message.params);
      case 'round_start':
        return this.onRoundStart(message);
      case 'federation_done':
        return this.onDone(message);
      case 'update_ack':
        if (this.client.job?.round === message.params.round) this.client.participated++;
        this.client.emit('update_acked', { round: message.params.round });
        return;
      case 'update_rejected':
        this.client.emit('update_rejected', { round: message.params.round, code: message.params.code, reason: message.params.reason });
        return;
      case 'round_closed':
        if (this.client.job !== undefined && this.client.job.round <= message.params.round) this.client.job.controller.abort();
        this.client.emit('round_closed', message.params);
        return;
      case 'ping':
        this.send({ method: 'pong', params: { nonce: message.params.nonce } });
        return;
      case 'error':
        this.client.emit('protocol_error', { code: message.params.code, message: message.params.message });
        // A fatal error closes the connection; only a wrong token or version is worth giving up for.
        if (message.params.fatal && (message.params.code === 'E_AUTH' || message.params.code === 'E_VERSION')) {
          this.ending ??= { kind: 'fatal', error: rejectionError(message.params.code, message.params.message, this.client.options.url) };
        }
        return;
      default:
        return;
    }
  }

  private async onWelcome(message: Message<'welcome'>): Promise<void> {
    const w = message.params;
    const hash = this.client.options.base.hash;
    if (w.config.baseModelHash !== hash) {
      throw new ClientError('E_BASE_MISMATCH', `the federation uses base model ${w.config.baseModelHash}, this client holds ${hash}`);
    }
    const wanted = this.client.options.rank;
    if (wanted !== undefined && wanted !== w.config.rank && w.rank !== wanted) {
      throw new ClientError('E_RANK', `this client asked to train at rank ${wanted}, but the coordinator's welcome does not confirm it (global rank ${w.config.rank}); it needs protocol 1.3 and a plan that allows rank ${wanted}`);
    }
    // The base copy holds exactly the federation's modules (loaded at the first welcome).
    await this.client.baseFor(w.config.layout);
    this.welcome = w;
    this.timer = startHeartbeat(w.limits.heartbeatMs, (ms) => this.idleFor(ms), (ping) => this.send(ping));
    this.client.emit('joined', { sessionId: w.sessionId, currentRound: w.currentRound, config: w.config, protocolMinor: w.protocolMinor });
  }

  /** Whether the socket is open and nothing was sent for `ms` (a heartbeat ping is due). */
  private idleFor(ms: number): boolean {
    return this.conn.isOpen && this.state.phase !== 'closed' && Date.now() - this.lastSent >= ms;
  }

  /** Signs the coordinator's challenge with the client's key (protocol 1.2); a token client never gets one. */
  private onChallenge(challenge: ParamsOf<'challenge'>): void {
    let response: ParamsOf<'challenge_response'>;
    try {
      response = respondToChallenge(this.client.credential, this.hello, challenge, this.client.options.url);
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      this.end({ kind: 'fatal', error: err }, 1008, err.code);
      return;
    }
    this.send({ method: 'challenge_response', params: response });
  }

  private onReject(p: ParamsOf<'reject'>): void {
    if (RETRYABLE.has(p.code)) {
      this.ending = { kind: 'retry', code: 1008, reason: `${p.code}: ${p.message}`, welcomed: false, ...(p.retryAfterMs !== undefined ? { retryAfterMs: p.retryAfterMs } : {}) };
    } else {
      this.ending = { kind: 'fatal', error: rejectionError(p.code, p.message, this.client.options.url) };
    }
  }

  /** Applies the base update; on a revision mismatch tells the coordinator and reconnects (announcing the true revision). */
  private async applyBase(message: Message<'round_start'> | Message<'federation_done'>): Promise<string[] | null> {
    const layout = this.welcome!.config.layout;
    try {
      return await this.client.base.apply(message.params, message.tensors, layout, this.client.backend);
    } catch (err) {
      if (!(err instanceof ClientError) || err.code !== 'E_BASE_MISMATCH') throw err;
      const e = protocolError('E_BASE_MISMATCH', err.message);
      this.end({ kind: 'retry', code: 1008, reason: err.message, welcomed: true }, 1008, 'E_BASE_MISMATCH', { method: 'error', params: errorParams(e, true) });
      return null;
    }
  }

  private async onRoundStart(message: Message<'round_start'>): Promise<void> {
    const updated = await this.applyBase(message);
    if (updated === null) return;
    const round = message.params.round;
    const client = this.client;
    client.emit('round_started', { round, baseRevision: client.base.revision, updatedModules: updated });
    const previous = client.job;
    if (previous !== undefined && previous.round === round && previous.failed !== true && !previous.controller.signal.aborted) {
      // The same round again after a reconnect: carry on with the training already under way.
      if (previous.result !== undefined) this.upload(previous);
      return;
    }
    previous?.controller.abort();
    const job: TrainingJob = { round, controller: new AbortController() };
    client.job = job;
    const w = this.welcome!;
    const global = this.globalAdapter(message.tensors);
    const base: BaseUpdateInfo = { revision: client.base.revision, fromRevision: message.params.baseUpdate?.fromRevision ?? null, updatedModules: updated, modules: client.base.modules };
    // Below the global rank: the truncated global adapter, on the base plus what the truncation drops (rankView.ts).
    const mine = settingsAtRank(w.config, w.rank);
    const start = mine === w.config ? global : truncatedAdapter(global, mine.layout);
    const config = { ...mine, timeLimitMs: message.params.timeLimitMs, clientName: client.options.name };
    const started = performance.now();
    const info = w.rank === undefined || mine === w.config ? Promise.resolve(base) : truncatedBase(base, global, w.config, w.rank, client.backend);
    info.then((b) => client.options.trainer.train(round, start, b, config, job.controller.signal)).then((result) => {
      if (client.job !== job || job.controller.signal.aborted) return;
      job.result = result;
      client.emit('trained', { round, result, durationMs: performance.now() - started });
      client.connection?.upload(job);
    }, (err: unknown) => {
      if (client.job !== job || job.controller.signal.aborted) return;
      job.failed = true;
      job.failure = err instanceof Error ? err.message : String(err);
      client.emit('training_failed', { round, message: job.failure });
      client.connection?.reportFailure(job);
    });
  }

  /**
   * Tells the coordinator that this round's training failed (`client_failed`, protocol 1.1), so the
   * round need not wait for this client until its deadline. Sent once, in the round's training phase.
   */
  reportFailure(job: TrainingJob): void {
    const w = this.welcome;
    if (job.failure === undefined || w === undefined || w.protocolMinor < 1 || this.state.phase !== 'training' || this.state.round !== job.round) return;
    this.send({ method: 'client_failed', params: { round: job.round, reason: safeText(job.failure, 1024) } });
  }

  /** Uploads a finished job if this connection is in that round's training phase. */
  /**
   * The global adapter of a round_start or federation_done. Fed-SB: R from the message, A and B from
   * it when it carries them (the first global message of a connection), else the ones kept from then.
   */
  private globalAdapter(tensors: Message<'round_start'>['tensors']): Map<string, LoraFactors> {
    const config = this.welcome!.config;
    const form = adapterFormOf(config.method);
    const global = adapterFromTensors(config.layout, tensors, form, this.sbFrozen);
    if (form === 'sb') this.sbFrozen = global;
    return global;
  }

  upload(job: TrainingJob): void {
    const r = job.result;
    const w = this.welcome;
    if (r === undefined || w === undefined || this.state.phase !== 'training' || this.state.round !== job.round) return;
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(r.metrics ?? {}).slice(0, 64)) if (METRIC_KEY.test(k) && !RESERVED.has(k) && Number.isFinite(v)) metrics[k] = v;
    const params: ParamsOf<'client_update'> = {
      round: job.round,
      examples: Math.max(0, Math.round(r.numExamples)),
      trainLoss: r.trainLoss,
      ...(r.steps !== undefined ? { steps: Math.max(0, Math.round(r.steps)) } : {}),
      ...(Object.keys(metrics).length > 0 ? { metrics } : {}),
    };
    let frame: Uint8Array;
    try {
      const layout = layoutAtRank(w.config.layout, w.rank);
      // Fed-SB uploads R only (docs/protocol.md §5.7).
      const form = adapterFormOf(w.config.method);
      const tensors = form === 'sb' ? sbAdapterToTensors(layout, r.adapter, false) : adapterToTensors(layout, r.adapter);
      frame = encodeMessage({ method: 'client_update', params, tensors }, { uplinkDtype: w.config.uplinkDtype, layout, maxFrameBytes: w.limits.maxFrameBytes, adapterForm: form });
    } catch (err) {
      job.failed = true;
      job.failure = `the trained adapter cannot be sent: ${(err as Error).message}`;
      this.client.emit('training_failed', { round: job.round, message: job.failure });
      this.reportFailure(job);
      return;
    }
    this.sendFrame(frame, 'client_update', params);
    this.client.emit('uploaded', { round: job.round, bytes: frame.length });
  }

  private async onDone(message: Message<'federation_done'>): Promise<void> {
    this.client.job?.controller.abort();
    if ((await this.applyBase(message)) === null) return;
    const global = this.globalAdapter(message.tensors);
    this.end({ kind: 'done', reason: message.params.reason, roundsCompleted: message.params.roundsCompleted, global }, 1000, 'federation done');
  }
}
