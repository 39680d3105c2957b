/**
 * The WebSocket server: an http (or, given a certificate, https) server with a `ws` server on top,
 * bound to 127.0.0.1 unless told otherwise, per-message deflate off (frames are mostly float bytes
 * that do not compress, and compression is a decompression-bomb risk), `maxPayload` = the frame
 * size limit. Plain HTTP requests get 426; every upgraded socket becomes a `Connection`.
 *
 * With `preAuth` (preAuth.ts), connections are counted from the TCP accept: beyond the limits in
 * total or per address the upgrade is answered 503, a socket that does not upgrade in time is
 * destroyed, and until the layer above calls `markAuthenticated` a message may not exceed the
 * small pre-authentication limit (frameGuard.ts) while `maxPayload` stays the large one.
 *
 * With `tls.clientCa` (mutual TLS) the TLS layer asks each client for a certificate and ends the
 * handshake of one that presents none (alert `certificate required`) or one the CA did not sign
 * (Node closes it without an alert): no HTTP request of such a connection is read.
 */
import { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { WsConnection, heartbeatSettings } from './connection.js';
import { PreAuthGate, refuseUpgrade, type PreAuthOptions } from './preAuth.js';
import { pemCertificates } from './tlsMaterial.js';
import { TransportError, type Connection, type TransportServer, type TransportServerEvents, type TransportServerOptions } from './types.js';

class WsTransportServer extends EventEmitter<TransportServerEvents> implements TransportServer {
  readonly connections = new Set<Connection>();
  private closing = false;

  constructor(
    private readonly http: Server,
    private readonly wss: WebSocketServer,
    readonly url: string,
    readonly port: number,
  ) {
    super();
  }

  adopt(connection: WsConnection): void {
    if (this.closing) {
      connection.close(1001, 'server shutting down');
      return;
    }
    this.connections.add(connection);
    connection.once('close', () => this.connections.delete(connection));
    this.emit('connection', connection);
  }

  async close(options: { abrupt?: boolean } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const pending = [...this.connections].map((c) => {
      if (options.abrupt) c.terminate();
      else c.close(1001, 'server shutting down');
      return c.closed;
    });
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
    await Promise.all(pending);
  }
}

function rejectPlainHttp(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', upgrade: 'websocket' });
  res.end('This is a FedEx coordinator: connect with a WebSocket client.\n');
}

/** Formats a host for a URL (IPv6 literals in brackets). */
function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts a WebSocket server and resolves once it listens. Connections arrive as `connection`
 * events; `close()` ends them all. Throws `T_LISTEN` when the address cannot be bound, `T_OPTIONS`
 * on nonsense options. With `preAuth`, the limits before authentication apply (see above).
 */
export async function createTransportServer(options: TransportServerOptions & { readonly preAuth?: PreAuthOptions }): Promise<TransportServer> {
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/';
  if (!Number.isInteger(options.maxFrameBytes) || options.maxFrameBytes < 1) {
    throw new TransportError('T_OPTIONS', `createTransportServer: maxFrameBytes must be a positive integer, got ${options.maxFrameBytes}`);
  }
  const heartbeat = heartbeatSettings(options);
  const clientCa = options.tls?.clientCa;
  // Node ignores a CA option without certificates, and would then refuse every client.
  if (clientCa !== undefined) pemCertificates(clientCa, 'createTransportServer: tls.clientCa');
  const http = options.tls === undefined
    ? createHttpServer(rejectPlainHttp)
    : createHttpsServer({
      cert: Buffer.from(options.tls.cert),
      key: Buffer.from(options.tls.key),
      ...(clientCa !== undefined ? { ca: Buffer.from(clientCa), requestCert: true, rejectUnauthorized: true } : {}),
    }, rejectPlainHttp);
  const gate = options.preAuth === undefined ? undefined : new PreAuthGate(options.preAuth);
  // noServer: the upgrade goes through the gate first; ws answers a bad request or a wrong path itself.
  const wss = new WebSocketServer({ noServer: true, path, maxPayload: options.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
  wss.on('error', () => undefined);
  http.on('clientError', (_err, socket) => socket.destroy());
  if (gate !== undefined) http.on('connection', (socket: Socket) => gate.accepted(socket));
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(new TransportError('T_LISTEN', `cannot listen on ${host}:${options.port ?? 0}: ${err.message}`, { cause: err }));
    http.once('error', onError);
    http.listen(options.port ?? 0, host, () => {
      http.off('error', onError);
      resolve();
    });
  });
  http.on('error', () => undefined);
  const port = (http.address() as AddressInfo).port;
  const scheme = options.tls === undefined ? 'ws' : 'wss';
  const server = new WsTransportServer(http, wss, `${scheme}://${urlHost(host)}:${port}${path}`, port);
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refusal = gate?.refusal(req.socket) ?? null;
    if (refusal !== null) {
      refuseUpgrade(socket, refusal);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
      server.adopt(gate === undefined ? new WsConnection(ws, req.socket, remote, heartbeat) : gate.connection(ws, req.socket, remote, heartbeat));
    });
  });
  return server;
}
