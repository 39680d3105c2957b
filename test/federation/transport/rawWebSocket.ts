// A bare WebSocket client on a TCP socket, for what the ws client would not send: a header that
// announces 60 MiB followed by the payload at the pace the server reads it, an upgrade that never
// comes, all from a chosen loopback source address (127.0.0.2, … on Linux).
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** A TCP connection to the host and port of a ws:// URL, from `localAddress`. */
export function openTcp(url: string, localAddress = '127.0.0.1'): Promise<Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port), localAddress });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Sends the upgrade request and resolves with the HTTP status of the answer (101 when upgraded). */
export async function rawUpgrade(url: string, localAddress = '127.0.0.1'): Promise<{ socket: Socket; status: number }> {
  const socket = await openTcp(url, localAddress);
  const u = new URL(url);
  socket.write([
    `GET ${u.pathname} HTTP/1.1`,
    `Host: ${u.host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    '',
    '',
  ].join('\r\n'));
  const head = await new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(text);
    };
    const onClose = (): void => reject(new Error(`connection closed before the upgrade answer (got '${text}')`));
    socket.on('data', onData);
    socket.once('close', onClose);
  });
  // Whatever the server sends next (pings, a close frame) is read and dropped, so it never blocks.
  socket.on('data', () => undefined);
  socket.on('error', () => undefined);
  return { socket, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0) };
}

/** A masked client frame header (all-zero mask key, so the payload goes as it is). */
export function frameHeader(length: number, opcode = 0x2, fin = true): Buffer {
  const first = (fin ? 0x80 : 0) | opcode;
  if (length < 126) return Buffer.from([first, 0x80 | length, 0, 0, 0, 0]);
  if (length < 65536) return Buffer.from([first, 0x80 | 126, length >> 8, length & 0xff, 0, 0, 0, 0]);
  const h = Buffer.alloc(14);
  h[0] = first;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

/**
 * Writes `bytes` of payload in 64 KiB pieces (one buffer, reused), waiting whenever the socket is
 * full, until all is sent, the socket closes, or `timeoutMs` passes; resolves with the bytes handed over.
 */
export async function streamPayload(socket: Socket, bytes: number, timeoutMs: number): Promise<number> {
  const piece = Buffer.alloc(64 * 1024);
  const deadline = Date.now() + timeoutMs;
  let sent = 0;
  let closed = socket.destroyed;
  const onClose = (): void => void (closed = true);
  socket.once('close', onClose);
  try {
    while (sent < bytes && !closed && Date.now() < deadline) {
      const n = Math.min(piece.length, bytes - sent);
      sent += n;
      if (!socket.write(n === piece.length ? piece : piece.subarray(0, n))) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
          socket.once('drain', done);
          socket.once('close', done);
        });
      }
    }
    return sent;
  } finally {
    socket.off('close', onClose);
  }
}
