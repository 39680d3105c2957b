/**
 * `Connection` on top of a `ws` WebSocket, shared by the server and the client side: binary
 * messages become `frame` events, a text message closes the connection with 1003, a frame over
 * `maxPayload` is refused by `ws` before its payload is read (1009), and a heartbeat (WebSocket
 * ping every `heartbeatMs`) terminates a peer that has been silent for `deadAfterMs`.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import { peerCertificateSubject } from './tlsMaterial.js';
import { TransportError, type CloseCause, type CloseInfo, type Connection, type ConnectionEvents, type ConnectionStats, type HeartbeatOptions } from './types.js';

const DEFAULT_HEARTBEAT_MS = 5_000;
/** How long a close handshake may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 2_000;

let nextId = 1;

/** The message as a plain Uint8Array view (no copy of a single Buffer; fragments are joined). */
function asBytes(data: RawData): Uint8Array {
  const buf = Array.isArray(data) ? Buffer.concat(data) : data;
  return buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function byteLengthOf(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

/** Resolved heartbeat settings; throws `T_OPTIONS` on nonsense. */
export function heartbeatSettings(options: HeartbeatOptions): { heartbeatMs: number; deadAfterMs: number } {
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const deadAfterMs = options.deadAfterMs ?? 3 * heartbeatMs;
  if (!(heartbeatMs >= 10) || !Number.isFinite(heartbeatMs)) throw new TransportError('T_OPTIONS', `heartbeatMs must be a finite number ≥ 10, got ${heartbeatMs}`);
  if (!(deadAfterMs > heartbeatMs) || !Number.isFinite(deadAfterMs)) throw new TransportError('T_OPTIONS', `deadAfterMs must be finite and > heartbeatMs (${heartbeatMs}), got ${deadAfterMs}`);
  return { heartbeatMs, deadAfterMs };
}

/** A `Connection` over a `ws` socket. Built by the server and by `connectTransport`. */
export class WsConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly id = `c${nextId++}`;
  readonly closed: Promise<CloseInfo>;
  readonly certificateSubject: string | null;
  private resolveClosed!: (info: CloseInfo) => void;
  private cause: CloseCause | undefined;
  private lastHeard = Date.now();
  private readonly timer: NodeJS.Timeout;
  private ended = false;
  private counters = { framesSent: 0, framesReceived: 0, bytesSent: 0, bytesReceived: 0 };

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Socket | undefined,
    readonly remote: string,
    heartbeat: HeartbeatOptions,
  ) {
    super();
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    // Read while the socket is open: a TLS socket forgets its peer's certificate once destroyed.
    this.certificateSubject = peerCertificateSubject(socket);
    const { heartbeatMs, deadAfterMs } = heartbeatSettings(heartbeat);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('pong', () => (this.lastHeard = Date.now()));
    ws.on('ping', () => (this.lastHeard = Date.now()));
    ws.on('error', (err: Error & { code?: string }) => {
      // ws closes the socket itself after an error (1009 for an oversized frame, 1002 for bad framing).
      this.cause ??= err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'too_large' : 'error';
    });
    ws.on('close', (code, reason) => this.finish(code, reason.toString('utf8')));
    this.timer = setInterval(() => this.beat(deadAfterMs), heartbeatMs);
    this.timer.unref();
  }

  get isOpen(): boolean {
    return !this.ended && this.ws.readyState === 1;
  }

  get stats(): ConnectionStats {
    return {
      ...this.counters,
      // The HTTP upgrade counts too: it crossed the wire for this connection.
      wireBytesSent: this.socket?.bytesWritten ?? 0,
      wireBytesReceived: this.socket?.bytesRead ?? 0,
    };
  }

  send(frame: Uint8Array): Promise<void> {
    if (!this.isOpen) return Promise.reject(new TransportError('T_CLOSED', `send on connection ${this.id} (${this.remote}): not open`));
    this.counters.framesSent++;
    this.counters.bytesSent += frame.byteLength;
    return new Promise((resolve, reject) => {
      this.ws.send(frame, { binary: true }, (err) => {
        if (err) reject(new TransportError('T_CLOSED', `send on connection ${this.id} (${this.remote}) failed: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
  }

  close(code = 1000, reason = ''): void {
    if (this.ended) return;
    try {
      // Close reasons are limited to 123 bytes by RFC 6455.
      this.ws.close(code, Buffer.from(reason, 'utf8').subarray(0, 123).toString('utf8').replace(/\uFFFD$/, ''));
    } catch {
      this.ws.terminate();
    }
    setTimeout(() => {
      if (!this.ended) this.ws.terminate();
    }, CLOSE_GRACE_MS).unref();
  }

  terminate(): void {
    this.cause ??= 'terminated';
    this.ws.terminate();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    this.lastHeard = Date.now();
    this.counters.framesReceived++;
    this.counters.bytesReceived += byteLengthOf(data);
    if (!isBinary) {
      this.cause ??= 'text_frame';
      this.close(1003, 'text messages are not part of the FedEx protocol; send binary frames');
      return;
    }
    this.emit('frame', asBytes(data));
  }

  private beat(deadAfterMs: number): void {
    if (this.ended || this.ws.readyState !== 1) return;
    if (Date.now() - this.lastHeard > deadAfterMs) {
      this.cause ??= 'heartbeat';
      this.ws.terminate();
      return;
    }
    try {
      this.ws.ping();
    } catch {
      // The socket is closing; the close event follows.
    }
  }

  private finish(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    const cause: CloseCause = this.cause ?? (code === 1000 || code === 1001 ? 'normal' : code === 1009 ? 'too_large' : code === 1003 ? 'text_frame' : code === 1006 ? 'error' : 'normal');
    const info: CloseInfo = { code, reason: reason || describe(cause), cause };
    this.resolveClosed(info);
    this.emit('close', info);
  }
}

function describe(cause: CloseCause): string {
  switch (cause) {
    case 'text_frame':
      return 'peer sent a text message';
    case 'too_large':
      return 'frame exceeds the size limit';
    case 'heartbeat':
      return 'peer stopped answering the heartbeat';
    case 'terminated':
      return 'connection terminated';
    case 'error':
      return 'connection lost';
    case 'normal':
      return 'closed';
  }
}
