/**
 * The client side of the transport: open one WebSocket (`connectTransport`) or keep trying with
 * exponential backoff and jitter until one opens (`connectWithRetry`). Reconnecting after a
 * connection ends is the caller's loop: each connection starts the protocol afresh (hello).
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import { WsConnection, heartbeatSettings } from './connection.js';
import { TransportError, type Connection, type ConnectOptions } from './types.js';
import { rootCertificates } from 'node:tls';
import { certificateAlert, checkClientCertificate } from './tlsMaterial.js';

/** The `T_CONNECT` of a failed open, or `T_CERTIFICATE` when the TLS server refused this client's certificate (or its lack of one). */
function connectError(url: string, err: Error, withCertificate: boolean): TransportError {
  const alert = certificateAlert(err);
  if (alert === null) return new TransportError('T_CONNECT', `connect to ${url}: ${err.message}`, { cause: err });
  const what = withCertificate ? 'refused the client certificate' : 'requires a client certificate (mutual TLS) and none was given';
  return new TransportError('T_CERTIFICATE', `connect to ${url}: the server ${what} (TLS alert: ${alert})`, { cause: err });
}

/**
 * Opens a WebSocket to `url` (`ws://` or `wss://`) and resolves with the connection once open.
 * Rejects `T_CONNECT` (refused, TLS failure, HTTP error, handshake timeout), `T_CERTIFICATE` (the
 * server refused the client certificate or requires one), `T_OPTIONS` (a client certificate that
 * does not parse or whose key is not its own) or `T_ABORTED`.
 */
export function connectTransport(url: string, options: ConnectOptions): Promise<Connection> {
  const heartbeat = heartbeatSettings(options);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.reject(new TransportError('T_OPTIONS', `connectTransport: '${url}' is not a URL`));
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    return Promise.reject(new TransportError('T_OPTIONS', `connectTransport: '${url}' must start with ws:// or wss://`));
  }
  if (options.signal?.aborted) return Promise.reject(new TransportError('T_ABORTED', `connect to ${url}: aborted`));
  const clientCert = options.tls?.cert;
  const clientKey = options.tls?.key;
  if ((clientCert === undefined) !== (clientKey === undefined)) {
    return Promise.reject(new TransportError('T_OPTIONS', 'connectTransport: tls.cert and tls.key go together'));
  }
  if (clientCert !== undefined && clientKey !== undefined) {
    try {
      checkClientCertificate(clientCert, clientKey);
    } catch (err) {
      return Promise.reject(err);
    }
  }
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      maxPayload: options.maxFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
      // An extra CA is trusted in addition to Node's default list, not instead of it.
      ...(options.tls?.ca !== undefined ? { ca: [...rootCertificates, Buffer.from(options.tls.ca)] } : {}),
      ...(options.tls?.rejectUnauthorized !== undefined ? { rejectUnauthorized: options.tls.rejectUnauthorized } : {}),
      ...(clientCert !== undefined && clientKey !== undefined ? { cert: Buffer.from(clientCert), key: Buffer.from(clientKey) } : {}),
    });
    let socket: Socket | undefined;
    let settled = false;
    const onAbort = (): void => fail(new TransportError('T_ABORTED', `connect to ${url}: aborted`));
    const fail = (err: TransportError): void => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      reject(err);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    ws.once('upgrade', (res: IncomingMessage) => (socket = res.socket));
    ws.once('unexpected-response', (_req: ClientRequest, res: IncomingMessage) => {
      fail(new TransportError('T_CONNECT', `connect to ${url}: server answered HTTP ${res.statusCode ?? '?'} instead of upgrading`));
    });
    ws.once('error', (err) => fail(connectError(url, err, clientCert !== undefined)));
    ws.once('open', () => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      ws.removeAllListeners('error');
      resolve(new WsConnection(ws, socket, `${parsed.hostname}:${parsed.port}`, heartbeat));
    });
  });
}

/** Options of `connectWithRetry`. */
export interface RetryOptions extends BackoffOptions {
  /** Give up after this many failed attempts (default: never). */
  readonly maxAttempts?: number;
  /** Give up once retrying longer would pass this many ms since the first failed attempt (default: never). */
  readonly maxDurationMs?: number;
  /** Random source for the jitter (default Math.random). */
  readonly random?: () => number;
  /** Called before each wait: the attempt that failed (0-based), the delay, and why. */
  readonly onRetry?: (attempt: number, delayMs: number, error: TransportError) => void;
}

/**
 * Connects to `url`, retrying with exponential backoff and jitter while the server is unreachable.
 * Rejects with the last `T_CONNECT` after `maxAttempts`, with `T_ABORTED` when `options.signal`
 * aborts, and at once for errors that retrying cannot fix (`T_OPTIONS`, `T_CERTIFICATE`).
 */
export async function connectWithRetry(url: string, options: ConnectOptions, retry: RetryOptions = {}): Promise<Connection> {
  const maxAttempts = retry.maxAttempts ?? Infinity;
  let firstFailure: number | undefined;
  for (let attempt = 0;; attempt++) {
    try {
      return await connectTransport(url, options);
    } catch (err) {
      const error = err instanceof TransportError ? err : new TransportError('T_CONNECT', `connect to ${url}: ${String(err)}`, { cause: err });
      firstFailure ??= Date.now();
      if (error.code !== 'T_CONNECT' || attempt + 1 >= maxAttempts) throw error;
      let delay = backoffDelay(attempt, retry, retry.random);
      if (retry.maxDurationMs !== undefined) {
        const left = retry.maxDurationMs - (Date.now() - firstFailure);
        if (left <= 0) throw error;
        // The last attempt lands at the end of the window rather than past it.
        delay = Math.min(delay, left);
      }
      retry.onRetry?.(attempt, delay, error);
      await sleep(delay, options.signal);
    }
  }
}
