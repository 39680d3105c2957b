/**
 * A cap on WebSocket message size that can be lifted per connection. `ws` takes one `maxPayload`
 * per server, so the server is built with the large limit of authenticated clients and this guard
 * reads the frame headers (RFC 6455 §5.2) of an unauthenticated client's byte stream as it arrives,
 * payloads skipped, never kept: a message that announces more than the small limit is reported from
 * its header, before `ws` has buffered more than the chunk that carried it.
 */
import type { Duplex } from 'node:stream';

/** Bytes of a frame header before the extended length: FIN/opcode, MASK/length. */
const BASE_HEADER = 2;

/**
 * Follows the frame boundaries of one direction of a WebSocket stream and adds up the payload
 * lengths of each message (a data frame and its continuations). Pure: feed it chunks in order.
 */
export class FrameLengthScanner {
  private readonly header = new Uint8Array(14);
  private have = 0;
  private need = BASE_HEADER;
  /** Payload bytes of the current frame still to pass over. */
  private skip = 0;
  /** Payload bytes of the current (possibly fragmented) data message so far. */
  private message = 0;

  constructor(private readonly limit: number) {}

  /** Reads `chunk`; returns the announced size of the first message (or frame) over the limit, else null. */
  scan(chunk: Uint8Array): number | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      this.header[this.have++] = chunk[i++];
      if (this.have === BASE_HEADER) this.need = BASE_HEADER + extendedLengthBytes(this.header[1] & 0x7f) + ((this.header[1] & 0x80) !== 0 ? 4 : 0);
      if (this.have < this.need) continue;
      const over = this.endOfHeader();
      if (over !== null) return over;
    }
    return null;
  }

  private endOfHeader(): number | null {
    const fin = (this.header[0] & 0x80) !== 0;
    const opcode = this.header[0] & 0x0f;
    const length = payloadLength(this.header);
    this.have = 0;
    this.need = BASE_HEADER;
    // Control frames (opcode ≥ 8) sit between fragments and do not count towards the message; `ws`
    // refuses one longer than 125 bytes itself, but none may pass the limit here either.
    if (length > this.limit) return length;
    if (opcode < 8) {
      this.message += length;
      if (this.message > this.limit) return this.message;
      if (fin) this.message = 0;
    }
    this.skip = length;
    return null;
  }
}

function extendedLengthBytes(length7: number): number {
  return length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
}

/** The payload length of a complete header (a 64-bit length beyond 2^53 comes out approximate, and huge). */
function payloadLength(h: Uint8Array): number {
  const length7 = h[1] & 0x7f;
  if (length7 === 126) return (h[2] << 8) | h[3];
  if (length7 === 127) {
    const high = ((h[2] << 24) >>> 0) + (h[3] << 16) + (h[4] << 8) + h[5];
    const low = ((h[6] << 24) >>> 0) + (h[7] << 16) + (h[8] << 8) + h[9];
    return high * 2 ** 32 + low;
  }
  return length7;
}

/**
 * Watches what `socket` receives until the returned function is called: `onOversize(bytes)` runs
 * once, as soon as a message announces more than `limit` bytes, and the watch ends. The listener is
 * put before `ws`'s own, so `onOversize` can pause the socket before `ws` reads further.
 */
export function guardFrames(socket: Duplex, limit: number, onOversize: (announcedBytes: number) => void): () => void {
  const scanner = new FrameLengthScanner(limit);
  const onData = (chunk: Buffer): void => {
    const over = scanner.scan(chunk);
    if (over === null) return;
    socket.off('data', onData);
    onOversize(over);
  };
  socket.prependListener('data', onData);
  return () => void socket.off('data', onData);
}
