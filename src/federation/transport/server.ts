/**
 * The WebSocket server: an http (or, given a certificate, https) server with a `ws` server on top,
 * bound to 127.0.0.1 unless told otherwise, per-message deflate off (frames are mostly float bytes
 * that do not compress, and compression is a decompression-bomb risk), `maxPayload` = the frame
 * size limit. Plain HTTP requests get 426; every upgraded socket becomes a `Connection`.
 */
import { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { WsConnection, heartbeatSettings } from './connection.js';
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
 * events; `close()` ends them all. Throws `T_LISTEN` when the address cannot be bound.
 */
export async function createTransportServer(options: TransportServerOptions): Promise<TransportServer> {
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/';
  if (!Number.isInteger(options.maxFrameBytes) || options.maxFrameBytes < 1) {
    throw new TransportError('T_OPTIONS', `createTransportServer: maxFrameBytes must be a positive integer, got ${options.maxFrameBytes}`);
  }
  const heartbeat = heartbeatSettings(options);
  const http = options.tls === undefined
    ? createHttpServer(rejectPlainHttp)
    : createHttpsServer({ cert: Buffer.from(options.tls.cert), key: Buffer.from(options.tls.key) }, rejectPlainHttp);
  const wss = new WebSocketServer({ server: http, path, maxPayload: options.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
  // A failed upgrade (bad request, wrong path) is answered by ws; nothing to do here but not crash.
  wss.on('error', () => undefined);
  http.on('clientError', (_err, socket) => socket.destroy());
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
  wss.on('connection', (ws, req) => {
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    server.adopt(new WsConnection(ws, req.socket, remote, heartbeat));
  });
  return server;
}
