/**
 * Per-round traffic: protocol frame bytes and the raw tensor bytes inside them (counted as frames
 * go by), and TCP payload bytes (from each connection's socket counters, as deltas since the round
 * started or the connection opened, whichever is later).
 */
import type { Connection } from '../transport/types.js';
import type { TrafficRecord } from './events.js';

export class TrafficMeter {
  private frames = { sent: 0, received: 0, rawSent: 0, rawReceived: 0 };
  private readonly baseline = new Map<Connection, { sent: number; received: number }>();
  private closedWire = { sent: 0, received: 0 };

  /** Counts one frame. */
  count(direction: 'sent' | 'received', bytes: number, rawBytes: number): void {
    if (direction === 'sent') {
      this.frames.sent += bytes;
      this.frames.rawSent += rawBytes;
    } else {
      this.frames.received += bytes;
      this.frames.rawReceived += rawBytes;
    }
  }

  /** Starts counting a new connection (its HTTP upgrade included). */
  track(conn: Connection): void {
    this.baseline.set(conn, { sent: 0, received: 0 });
  }

  /** A connection ended: keeps what it moved since the baseline. */
  untrack(conn: Connection): void {
    const b = this.baseline.get(conn);
    if (b === undefined) return;
    const s = conn.stats;
    this.closedWire.sent += s.wireBytesSent - b.sent;
    this.closedWire.received += s.wireBytesReceived - b.received;
    this.baseline.delete(conn);
  }

  /** Starts a new round's counts. */
  reset(): void {
    this.frames = { sent: 0, received: 0, rawSent: 0, rawReceived: 0 };
    this.closedWire = { sent: 0, received: 0 };
    for (const conn of this.baseline.keys()) {
      const s = conn.stats;
      this.baseline.set(conn, { sent: s.wireBytesSent, received: s.wireBytesReceived });
    }
  }

  /** Counts since the last reset. */
  snapshot(): TrafficRecord {
    let wireSent = this.closedWire.sent;
    let wireReceived = this.closedWire.received;
    for (const [conn, b] of this.baseline) {
      const s = conn.stats;
      wireSent += s.wireBytesSent - b.sent;
      wireReceived += s.wireBytesReceived - b.received;
    }
    return { ...this.frames, wireSent, wireReceived };
  }
}
