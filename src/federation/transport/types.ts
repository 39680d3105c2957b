/**
 * The transport's public face, free of `ws` types: a `Connection` carries whole binary frames
 * (one protocol message each) and reports how it ended; a `TransportServer` hands out connections.
 * The rest of the federation code sees only these interfaces (only this folder imports `ws`).
 */
import type { EventEmitter } from 'node:events';

/** Stable codes of transport failures. */
export type TransportErrorCode =
  | 'T_CONNECT' // the WebSocket could not be opened (refused, DNS, TLS, handshake timeout, HTTP error)
  | 'T_CLOSED' // send on a connection that is not open
  | 'T_LISTEN' // the server could not bind
  | 'T_ABORTED' // an AbortSignal stopped the operation
  | 'T_CERTIFICATE' // the TLS server refused this client's certificate, or requires one (mutual TLS): retrying cannot help
  | 'T_OPTIONS'; // invalid options

/** A transport failure: a stable code and one sentence naming the peer, URL or option. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(readonly code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Why a connection ended, as far as the transport knows: `normal` (a close handshake), `text_frame`
 * (the peer sent a text message: closed 1003), `too_large` (a frame over the size limit: 1009),
 * `heartbeat` (the peer stopped answering: terminated), `terminated` (destroyed locally), `error`
 * (socket error or abnormal end, 1006).
 */
export type CloseCause = 'normal' | 'text_frame' | 'too_large' | 'heartbeat' | 'terminated' | 'error';

/** How a connection ended. */
export interface CloseInfo {
  /** WebSocket close code (1006 when the TCP connection just vanished). */
  readonly code: number;
  readonly reason: string;
  readonly cause: CloseCause;
}

/** Counters of one connection. `wire*` are TCP payload bytes (HTTP upgrade and WebSocket framing included). */
export interface ConnectionStats {
  readonly framesSent: number;
  readonly framesReceived: number;
  /** Protocol frame bytes (WebSocket message payloads). */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly wireBytesSent: number;
  readonly wireBytesReceived: number;
}

/** Events of a connection. */
export interface ConnectionEvents {
  /** One binary WebSocket message: exactly one protocol frame. */
  frame: [bytes: Uint8Array];
  /** Emitted once when the connection is gone, whatever the reason. */
  close: [info: CloseInfo];
}

/** One open WebSocket, binary frames only, with a heartbeat that detects dead peers. */
export interface Connection extends EventEmitter<ConnectionEvents> {
  /** Process-unique id (`c17`), for logs. */
  readonly id: string;
  /** `address:port` of the peer. */
  readonly remote: string;
  /**
   * Subject (`CN=alice, O=Lab`) of the certificate the peer presented over TLS: on a server with
   * `clientCa`, the client certificate it verified; null without TLS or without one.
   */
  readonly certificateSubject: string | null;
  readonly isOpen: boolean;
  readonly stats: ConnectionStats;
  /** Resolves when the whole frame has been handed to the kernel; rejects `T_CLOSED` when not open. */
  send(frame: Uint8Array): Promise<void>;
  /** Starts a close handshake (code 1000 by default); the connection is destroyed if it does not finish. */
  close(code?: number, reason?: string): void;
  /** Destroys the socket at once (no close handshake). */
  terminate(): void;
  /** Resolves with the close information once the connection has ended. */
  readonly closed: Promise<CloseInfo>;
}

/** Liveness settings shared by both ends. */
export interface HeartbeatOptions {
  /** WebSocket ping interval (default 5000 ms). */
  readonly heartbeatMs?: number;
  /** Terminate when nothing was heard for this long (default 3 × heartbeatMs). */
  readonly deadAfterMs?: number;
}

/** TLS material for a `wss://` server (PEM text or bytes). */
export interface ServerTlsOptions {
  readonly cert: string | Uint8Array;
  readonly key: string | Uint8Array;
  /**
   * Mutual TLS: the CA certificate(s) client certificates must be signed by. The server then asks
   * every client for a certificate and ends, in the TLS handshake, a connection that presents none
   * or one this CA did not sign (no HTTP request or WebSocket frame of it is read).
   */
  readonly clientCa?: string | Uint8Array;
}

/** Options of `createTransportServer`. */
export interface TransportServerOptions extends HeartbeatOptions {
  /** Interface to bind (default `127.0.0.1`: loopback only). */
  readonly host?: string;
  /** Port (default 0: an ephemeral port). */
  readonly port?: number;
  /** URL path the WebSocket is served on (default `/`). */
  readonly path?: string;
  /** Serve `wss://` with this certificate. */
  readonly tls?: ServerTlsOptions;
  /** Largest frame accepted; a bigger one closes the connection with 1009 before it is read. */
  readonly maxFrameBytes: number;
}

/** Events of a server. */
export interface TransportServerEvents {
  connection: [connection: Connection];
}

/** A listening WebSocket server. */
export interface TransportServer extends EventEmitter<TransportServerEvents> {
  /** `ws://127.0.0.1:PORT/` or `wss://…`. */
  readonly url: string;
  readonly port: number;
  /** Connections currently open. */
  readonly connections: ReadonlySet<Connection>;
  /** Stops listening and ends every connection (close 1001, or terminate when `abrupt`). */
  close(options?: { abrupt?: boolean }): Promise<void>;
}

/** Options of `connectTransport`. */
export interface ConnectOptions extends HeartbeatOptions {
  /** Largest frame accepted from the server. */
  readonly maxFrameBytes: number;
  /** Give up opening after this long (default 10 000 ms). */
  readonly handshakeTimeoutMs?: number;
  /**
   * For `wss://`: extra trusted CA certificates (PEM), whether to check the server's certificate
   * (default true), and a client certificate with its private key (PEM) for servers that require
   * one (mutual TLS).
   */
  readonly tls?: {
    readonly ca?: string | Uint8Array;
    readonly rejectUnauthorized?: boolean;
    readonly cert?: string | Uint8Array;
    readonly key?: string | Uint8Array;
  };
  readonly signal?: AbortSignal;
}
