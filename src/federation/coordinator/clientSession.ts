/**
 * One client connection as the coordinator sees it: decodes and validates every frame in order
 * (docs/protocol.md §9), runs the session state machine over everything sent and received, answers
 * pings, sends its own pings when idle, enforces the hello timeout, and turns every failure into
 * the right reply — `reject` during the handshake, `update_rejected` for an upload, `error`
 * otherwise (fatal after too many). What the messages mean is the host's business. Until its hello
 * is admitted the connection is under the limits before authentication (docs/protocol.md §13):
 * `admit` lifts them, and its protocol errors are logged only as far as the host's
 * `admissionLimits` allow.
 */
import { encodeMessage, errorParams, safeText } from '../protocol/codec.js';
import type { FloatWireDType } from '../protocol/dtypes.js';
import type { AnyMessage, AnyOutgoingMessage, Message } from '../protocol/envelope.js';
import { ProtocolError, protocolError } from '../protocol/errors.js';
import { decodeFrame, type RawFrame } from '../protocol/frame.js';
import type { Method, ParamsOf } from '../protocol/messages.js';
import type { KeyObject } from 'node:crypto';
import { advanceSession, INITIAL_SESSION, type SessionState } from '../protocol/sessionState.js';
import { validateFrame, type ReceiveOptions } from '../protocol/validate.js';
import { markAuthenticated } from '../transport/preAuth.js';
import type { Connection } from '../transport/types.js';
import type { AdmissionLimits } from './admissionLimits.js';

/** What a session needs from the coordinator. */
export interface SessionHost {
  readonly limits: { readonly maxFrameBytes: number; readonly heartbeatMs: number; readonly helloTimeoutMs: number; readonly maxProtocolErrors: number };
  /** Receive options for this session's frames (layout, dtypes, norm bound and reference). */
  receiveOptions(session: CoordinatorSession): ReceiveOptions;
  onHello(session: CoordinatorSession, hello: Message<'hello'>): void;
  /** The answer to the challenge this session was sent (protocol 1.2, §7.2). */
  onChallengeResponse(session: CoordinatorSession, pending: PendingChallenge, response: Message<'challenge_response'>): void;
  onUpdate(session: CoordinatorSession, update: Message<'client_update'>, frameBytes: number): void;
  /** A model_request (docs/protocol.md §8); the host answers it, in order, or refuses it. */
  onModelRequest(session: CoordinatorSession, request: Message<'model_request'>): void;
  onUpdateRejected(session: CoordinatorSession, round: number, code: string, reason: string): void;
  /** The client reports that its training for `round` failed (protocol 1.1). */
  onClientFailed(session: CoordinatorSession, round: number, reason: string): void;
  onLeave(session: CoordinatorSession, reason: string): void;
  onProtocolError(session: CoordinatorSession, error: ProtocolError): void;
  /** Rate limit of what unauthenticated peers get logged (absent: everything is). */
  readonly admissionLimits?: Pick<AdmissionLimits, 'shouldLog'>;
  onClosed(session: CoordinatorSession, reason: string): void;
  /** Counts traffic of every frame sent and received (bytes, raw tensor bytes). */
  countTraffic(direction: 'sent' | 'received', bytes: number, rawBytes: number): void;
}

/**
 * How a hello was admitted: as a client of the federation (`joined`), or only to fetch the base
 * model (`fetching`, §8: never sampled; it leaves and rejoins with the hash).
 */
export type SessionAdmission = {
  readonly kind: 'joined' | 'fetching';
  readonly clientId: string;
  readonly name: string;
  readonly sessionId: string;
  /** Negotiated protocol minor version (welcome.protocolMinor). */
  readonly minor: number;
  readonly uplinkDtype: FloatWireDType;
  readonly peerMaxFrameBytes: number;
  /** Whether the client applies factored residuals (joined clients; fetching ones get none). */
  readonly factoredOk: boolean;
  /** Base revision the client announced. */
  readonly revision: number;
  /** The rank the client trains at, when it named one (protocol 1.3); absent: the global rank. */
  readonly rank?: number;
};

/** A challenge sent and not yet answered: what the answer is checked against. */
export interface PendingChallenge {
  readonly hello: ParamsOf<'hello'>;
  readonly nonce: string;
  readonly key: KeyObject;
  readonly minor: number;
}

/** Protocol state of one client connection. */
export class CoordinatorSession {
  state: SessionState = INITIAL_SESSION;
  /** Set once the hello is admitted (one tagged value, never field by field). */
  private admission: SessionAdmission | null = null;
  /** Base revision the client holds (hello, then what we sent it). */
  revision = 0;
  /** Fed-SB: this session has been sent the frozen lora_A and lora_B (docs/protocol.md §5.7); later global frames carry R only. */
  sbFrozenSent = false;
  private errors = 0;
  private lastSent = Date.now();
  private nonce = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  /** The challenge sent, until it is answered (each nonce is checked once). */
  private pending: PendingChallenge | undefined;

  constructor(readonly conn: Connection, private readonly host: SessionHost) {
    conn.on('frame', (bytes) => this.onFrame(bytes));
    conn.once('close', (info) => {
      for (const t of this.timers) clearInterval(t);
      this.state = { ...this.state, phase: 'closed' };
      host.onClosed(this, `${info.reason} (${info.code})`);
    });
    const hello = setTimeout(() => {
      if (this.state.phase === 'connecting') this.fatal(protocolError('E_TIMEOUT', `no hello within ${host.limits.helloTimeoutMs} ms`));
    }, host.limits.helloTimeoutMs);
    const ping = setInterval(() => {
      if ((this.joined || this.fetching) && Date.now() - this.lastSent >= host.limits.heartbeatMs) {
        this.nonce = (this.nonce + 1) >>> 0;
        void this.send({ method: 'ping', params: { nonce: this.nonce, sentAt: Date.now() } }).catch(() => undefined);
      }
    }, host.limits.heartbeatMs);
    hello.unref();
    ping.unref();
    this.timers.push(hello, ping);
  }

  /** Waits for the answer to a challenge (within the hello timeout) before the hello is decided. */
  expectResponse(pending: PendingChallenge): void {
    this.pending = pending;
    const timer = setTimeout(() => {
      if (this.state.phase === 'authenticating') this.fatal(protocolError('E_TIMEOUT', `no challenge_response within ${this.host.limits.helloTimeoutMs} ms`));
    }, this.host.limits.helloTimeoutMs);
    timer.unref();
    this.timers.push(timer);
  }

  /** Records how the hello was admitted (once per connection) and lifts the limits before authentication. */
  admit(a: SessionAdmission): void {
    if (this.admission !== null) throw new Error(`session of ${this.admission.clientId} was already admitted`);
    this.admission = a;
    this.revision = a.revision;
    markAuthenticated(this.conn);
  }

  get clientId(): string | undefined {
    return this.admission?.clientId;
  }

  get name(): string {
    return this.admission?.name ?? '';
  }

  get sessionId(): string {
    return this.admission?.sessionId ?? '';
  }

  get joined(): boolean {
    return this.admission?.kind === 'joined';
  }

  get fetching(): boolean {
    return this.admission?.kind === 'fetching';
  }

  get minor(): number {
    return this.admission?.minor ?? 0;
  }

  get uplinkDtype(): FloatWireDType {
    return this.admission?.uplinkDtype ?? 'float32';
  }

  /** The rank the client trains at (undefined: the global rank). */
  get rank(): number | undefined {
    return this.admission?.rank;
  }

  get factoredOk(): boolean {
    return this.admission?.factoredOk ?? true;
  }

  /** Largest frame the peer accepts (4096 before its hello is admitted). */
  get peerMaxFrameBytes(): number {
    return this.admission?.peerMaxFrameBytes ?? 4096;
  }

  get isOpen(): boolean {
    return this.conn.isOpen && this.state.phase !== 'closed';
  }

  /** Encodes and sends a message (state machine first); resolves with the frame's byte length. */
  async send(message: AnyOutgoingMessage, rawBytes = 0): Promise<number> {
    return this.sendFrame(encodeMessage(message, { maxFrameBytes: this.peerMaxFrameBytes }), message.method, message.params, rawBytes);
  }

  /** Sends a frame encoded elsewhere (a broadcast encodes once for many sessions). */
  async sendFrame(frame: Uint8Array, method: Method, params: unknown, rawBytes = 0): Promise<number> {
    if (frame.length > this.peerMaxFrameBytes) {
      throw protocolError('E_TOO_LARGE', `${method} of ${frame.length} bytes exceeds client ${this.clientId ?? this.conn.remote}'s limit of ${this.peerMaxFrameBytes}`);
    }
    this.state = advanceSession(this.state, 'coordinator', { method, params });
    this.lastSent = Date.now();
    this.host.countTraffic('sent', frame.length, rawBytes);
    await this.conn.send(frame);
    return frame.length;
  }

  /** Sends `error`/`reject` for `err` and closes with 1008. */
  fatal(err: ProtocolError): void {
    const handshaking = this.state.phase === 'connecting' || this.state.phase === 'handshaking' || this.state.phase === 'authenticating';
    // A first frame that is no valid hello still gets a reject: treat it as the attempted hello.
    if (this.state.phase === 'connecting') this.state = { ...this.state, phase: 'handshaking' };
    const message: AnyOutgoingMessage = handshaking
      ? { method: 'reject', params: { code: err.code, message: safeText(err.message) } }
      : { method: 'error', params: errorParams(err, true) };
    this.report(err);
    this.sendBestEffort(message).finally(() => this.conn.close(1008, err.code));
  }

  /** Answers a bad request with a non-fatal `error` (fatal once there were too many protocol errors). */
  refuse(err: ProtocolError): void {
    if (this.state.phase !== 'closed') this.failure(err);
  }

  /** Closes politely after a final message. */
  closeAfter(message: AnyOutgoingMessage | null, code: number, reason: string): void {
    const done = message === null ? Promise.resolve() : this.sendBestEffort(message);
    void done.finally(() => this.conn.close(code, reason));
  }

  private sendBestEffort(message: AnyOutgoingMessage): Promise<void> {
    try {
      return this.send(message).then(() => undefined, () => undefined);
    } catch {
      return Promise.resolve();
    }
  }

  private onFrame(bytes: Uint8Array): void {
    if (this.state.phase === 'closed') return;
    let raw: RawFrame;
    let message: AnyMessage;
    try {
      raw = decodeFrame(bytes, { maxFrameBytes: this.host.limits.maxFrameBytes });
    } catch (err) {
      this.host.countTraffic('received', bytes.length, 0);
      this.failure(asProtocolError(err));
      return;
    }
    try {
      message = validateFrame(raw, this.host.receiveOptions(this));
    } catch (err) {
      this.host.countTraffic('received', bytes.length, 0);
      const e = asProtocolError(err);
      const round = (raw.params as { round?: unknown }).round;
      // Any bad upload that names its round gets update_rejected for it (it uses up the round), never
      // a bare error that would leave both ends waiting for the round's update until the deadline.
      if (raw.method === 'client_update' && this.joined && Number.isInteger(round) && (round as number) >= 1) {
        this.rejectUpdate(round as number, e, raw.params);
      } else {
        this.failure(e);
      }
      return;
    }
    const rawBytes = message.tensors.reduce((n, t) => n + t.data.length * (message.method === 'client_update' ? itemSize(this.uplinkDtype) : 4), 0);
    this.host.countTraffic('received', bytes.length, rawBytes);
    try {
      this.state = advanceSession(this.state, 'client', message);
    } catch (err) {
      const e = asProtocolError(err);
      if (message.method === 'client_update' && this.joined) this.rejectUpdate(message.params.round, e, null);
      else this.failure(e);
      return;
    }
    this.dispatch(message, bytes.length);
  }

  private dispatch(message: AnyMessage, frameBytes: number): void {
    switch (message.method) {
      case 'hello':
        this.host.onHello(this, message);
        return;
      case 'challenge_response': {
        const pending = this.pending;
        this.pending = undefined;
        if (pending !== undefined) this.host.onChallengeResponse(this, pending, message);
        else this.fatal(protocolError('E_STATE', 'challenge_response without a challenge'));
        return;
      }
      case 'client_update':
        this.host.onUpdate(this, message, frameBytes);
        return;
      case 'client_failed':
        this.host.onClientFailed(this, message.params.round, message.params.reason);
        return;
      case 'ping':
        void this.send({ method: 'pong', params: { nonce: message.params.nonce } }).catch(() => undefined);
        return;
      case 'leave':
        this.host.onLeave(this, message.params.reason ?? 'left');
        this.conn.close(1000, 'left');
        return;
      case 'error':
        this.report(protocolError('E_INTERNAL', `client reported ${message.params.code}: ${message.params.message}`));
        if (message.params.fatal) this.conn.close(1008, message.params.code);
        return;
      case 'model_request':
        this.host.onModelRequest(this, message);
        return;
      default:
        return;
    }
  }

  /** update_rejected for an upload; the client's state machine counts it as sent. */
  private rejectUpdate(round: number, err: ProtocolError, params: unknown): void {
    if (params !== null) {
      try {
        this.state = advanceSession(this.state, 'client', { method: 'client_update', params });
      } catch {
        // Its state error is secondary: the tensor check already failed.
      }
    }
    this.host.onUpdateRejected(this, round, err.code, err.message);
    // update_rejected may only name a round this connection started (§7.1); otherwise it is an error.
    if (round <= this.state.round) {
      void this.sendBestEffort({ method: 'update_rejected', params: { round, code: err.code, reason: safeText(err.message) } });
    } else {
      this.failure(err);
    }
  }

  /** A bad frame: reject during the handshake, else a non-fatal error until there are too many. */
  private failure(err: ProtocolError): void {
    if (this.state.phase === 'connecting' || this.state.phase === 'handshaking' || this.state.phase === 'authenticating' || ++this.errors > this.host.limits.maxProtocolErrors) {
      this.fatal(this.errors > this.host.limits.maxProtocolErrors ? protocolError(err.code, `${err.message} (too many protocol errors: ${this.errors})`) : err);
      return;
    }
    this.report(err);
    void this.sendBestEffort({ method: 'error', params: errorParams(err, false) });
  }

  /** Tells the host of a protocol error; an unauthenticated peer's only while the log's budget for its address lasts. */
  private report(err: ProtocolError): void {
    if (this.admission === null && this.host.admissionLimits?.shouldLog(this.conn.remote, err.code) === false) return;
    this.host.onProtocolError(this, err);
  }
}

function asProtocolError(err: unknown): ProtocolError {
  return err instanceof ProtocolError ? err : protocolError('E_INTERNAL', err instanceof Error ? err.message : String(err));
}

function itemSize(dtype: FloatWireDType): number {
  return dtype === 'float32' ? 4 : 2;
}
