/**
 * Limits on connections that have not authenticated yet (docs/protocol.md §13): how many may be open
 * in total and per remote address, how long one may take to upgrade to a WebSocket, and how large
 * a message it may send (frameGuard.ts). A `PreAuthGate` follows every TCP connection of one server
 * from accept to close; the layer above lifts the limits of a connection with `markAuthenticated`
 * once its peer has proved who it is.
 */
import { isIPv6, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { WsConnection } from './connection.js';
import { guardFrames } from './frameGuard.js';
import { TransportError, type Connection, type HeartbeatOptions } from './types.js';

/** Why a connection was refused or cut off before it authenticated. */
export type RefusalReason =
  | 'too_many_connections' // the server holds `maxConnections` connections
  | 'too_many_pending' // the address holds `maxPendingPerAddress` unauthenticated connections
  | 'upgrade_timeout' // no WebSocket upgrade within `upgradeTimeoutMs` of the TCP connect
  | 'frame_too_large'; // a message over `maxFrameBytes` before authentication

/** One refused or cut-off connection, for the logs. */
export interface Refusal {
  /** `address:port` of the peer. */
  readonly remote: string;
  readonly reason: RefusalReason;
  /** One sentence naming the limit. */
  readonly message: string;
}

/** Settings of `createTransportServer`'s `preAuth` option. */
export interface PreAuthOptions {
  /** Connections open at once, authenticated or not; more are refused (HTTP 503). */
  readonly maxConnections: number;
  /** Unauthenticated connections from one address (an IPv4 address or an IPv6 /64); more are refused (HTTP 503). */
  readonly maxPendingPerAddress: number;
  /** Largest message before authentication; a larger one closes the connection (1009) when its header arrives. */
  readonly maxFrameBytes: number;
  /** From the TCP connect until the WebSocket upgrade is done; then the socket is destroyed. */
  readonly upgradeTimeoutMs: number;
  /** Told of every refused or cut-off connection (after the fact, for logs). */
  readonly onRefused?: (refusal: Refusal) => void;
}

/** How long a refused socket may take to send its upgrade request and read the 503 answer. */
const REFUSED_GRACE_MS = 1_000;
/** Refused sockets kept open for that answer at once; beyond it they are destroyed on accept. */
const MAX_REFUSING = 64;
/** `Retry-After` (seconds) of a refused upgrade. */
const RETRY_AFTER_S = 1;

/**
 * The key limits are counted by: an IPv4 address as it is (also IPv4-mapped IPv6), an IPv6 address
 * by its /64 (one host usually has a whole /64 to choose from), anything else as given.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped !== null) return mapped[1];
  const bare = address.split('%')[0];
  if (!isIPv6(bare)) return address;
  const [head, tail] = bare.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  // A dotted IPv4 tail (`64:ff9b::1.2.3.4`) stands for two groups.
  const width = (parts: string[]): number => parts.reduce((n, p) => n + (p.includes('.') ? 2 : 1), 0);
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - width(left) - width(right)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/** `addressKey` of a `Connection.remote` (`address:port`). */
export function addressKeyOfRemote(remote: string): string {
  const colon = remote.lastIndexOf(':');
  return addressKey(colon < 0 ? remote : remote.slice(0, colon));
}

/** A server-side connection under the limits before authentication until `authenticated()`. */
export class PreAuthConnection extends WsConnection {
  constructor(ws: WebSocket, socket: Socket, remote: string, heartbeat: HeartbeatOptions, private readonly lift: () => void) {
    super(ws, socket, remote, heartbeat);
  }

  /** The peer proved who it is: the small frame limit goes and it stops counting as pending. Idempotent. */
  authenticated(): void {
    this.lift();
  }
}

/** Lifts the limits before authentication of `conn` (a no-op for connections without them). */
export function markAuthenticated(conn: Connection): void {
  if (conn instanceof PreAuthConnection) conn.authenticated();
}

type EntryState = 'refused' | 'pending' | 'authenticated';

interface Entry {
  readonly key: string;
  readonly remote: string;
  state: EntryState;
  refusal: Refusal | null;
  timer: NodeJS.Timeout | undefined;
}

/** Follows the TCP connections of one server from accept to close and applies `PreAuthOptions`. */
export class PreAuthGate {
  private open = 0;
  private refusing = 0;
  private readonly pendingByKey = new Map<string, number>();
  /** By `address|port`: the raw socket of a TLS server and the TLS socket an upgrade arrives on share it. */
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: PreAuthOptions) {
    for (const name of ['maxConnections', 'maxPendingPerAddress', 'maxFrameBytes', 'upgradeTimeoutMs'] as const) {
      const v = options[name];
      if (!Number.isInteger(v) || v < 1) throw new TransportError('T_OPTIONS', `createTransportServer: preAuth.${name} must be a positive integer, got ${v}`);
    }
  }

  /** A TCP connection was accepted (before TLS and HTTP): counted, or marked refused. */
  accepted(socket: Socket): void {
    const address = socket.remoteAddress;
    if (address === undefined) {
      socket.destroy();
      return;
    }
    const id = socketId(socket);
    const key = addressKey(address);
    const remote = `${address}:${socket.remotePort ?? '?'}`;
    const refusal = this.refusalFor(key, remote);
    if (refusal !== null) {
      this.options.onRefused?.(refusal);
      if (this.refusing >= MAX_REFUSING) {
        socket.destroy();
        return;
      }
      this.refusing++;
      const entry: Entry = { key, remote, state: 'refused', refusal, timer: setTimeout(() => socket.destroy(), REFUSED_GRACE_MS) };
      this.track(id, socket, entry);
      return;
    }
    this.open++;
    this.pendingByKey.set(key, (this.pendingByKey.get(key) ?? 0) + 1);
    const entry: Entry = { key, remote, state: 'pending', refusal: null, timer: undefined };
    entry.timer = setTimeout(() => {
      this.options.onRefused?.({ remote, reason: 'upgrade_timeout', message: `no WebSocket upgrade within ${this.options.upgradeTimeoutMs} ms of connecting` });
      socket.destroy();
    }, this.options.upgradeTimeoutMs);
    this.track(id, socket, entry);
  }

  /** Why the upgrade request on `socket` is refused, or null to go on. */
  refusal(socket: Duplex & { remoteAddress?: string; remotePort?: number }): Refusal | null {
    return this.entries.get(socketId(socket))?.refusal ?? null;
  }

  /** The WebSocket is open: the upgrade deadline ends and its frames are guarded until it authenticates. */
  connection(ws: WebSocket, socket: Socket, remote: string, heartbeat: HeartbeatOptions): PreAuthConnection {
    const entry = this.entries.get(socketId(socket));
    clearTimeout(entry?.timer);
    let unguard = (): void => undefined;
    const conn = new PreAuthConnection(ws, socket, remote, heartbeat, () => {
      unguard();
      if (entry?.state === 'pending') {
        entry.state = 'authenticated';
        this.unpend(entry.key);
      }
    });
    unguard = guardFrames(socket, this.options.maxFrameBytes, (bytes) => {
      // Stop reading: what the peer sends next stays in its socket buffer, not in ours.
      ws.pause();
      const message = `a message of ${bytes} bytes before authentication exceeds the limit of ${this.options.maxFrameBytes} bytes`;
      this.options.onRefused?.({ remote, reason: 'frame_too_large', message });
      conn.close(1009, message);
    });
    return conn;
  }

  private refusalFor(key: string, remote: string): Refusal | null {
    if (this.open >= this.options.maxConnections) {
      return { remote, reason: 'too_many_connections', message: `the server holds its limit of ${this.options.maxConnections} connections` };
    }
    if ((this.pendingByKey.get(key) ?? 0) >= this.options.maxPendingPerAddress) {
      return { remote, reason: 'too_many_pending', message: `${key} already has ${this.options.maxPendingPerAddress} connections waiting to authenticate` };
    }
    return null;
  }

  private track(id: string, socket: Socket, entry: Entry): void {
    this.entries.set(id, entry);
    entry.timer?.unref();
    socket.once('close', () => {
      clearTimeout(entry.timer);
      if (this.entries.get(id) === entry) this.entries.delete(id);
      if (entry.state === 'refused') {
        this.refusing--;
        return;
      }
      this.open--;
      if (entry.state === 'pending') this.unpend(entry.key);
    });
  }

  private unpend(key: string): void {
    const n = (this.pendingByKey.get(key) ?? 1) - 1;
    if (n <= 0) this.pendingByKey.delete(key);
    else this.pendingByKey.set(key, n);
  }
}

function socketId(socket: { remoteAddress?: string; remotePort?: number }): string {
  return `${socket.remoteAddress ?? '?'}|${socket.remotePort ?? '?'}`;
}

/** Answers a refused upgrade request with 503 and `Retry-After`, then closes. */
export function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  const body = `${refusal.message}; try again later.\n`;
  socket.on('error', () => socket.destroy());
  socket.once('finish', () => socket.destroy());
  socket.end([
    'HTTP/1.1 503 Service Unavailable',
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Retry-After: ${RETRY_AFTER_S}`,
    '',
    body,
  ].join('\r\n'));
}
