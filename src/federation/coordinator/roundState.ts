/**
 * One round's bookkeeping, pure (no sockets, no timers): who was sampled, who delivered, who is
 * gone, and whether the round may close. A round closes when every sampled client is accounted
 * for (delivered or failed), when nobody is still working and the quorum delivered (clients that
 * dropped then count as failures), or at the deadline. Plus the seeded client sampling.
 */
import { createRng, sampleWithoutReplacement } from '../../core/random.js';

/** Where a sampled client stands in the round. */
export type ParticipantState = 'pending' | 'reported' | 'disconnected' | 'failed';

/**
 * Samples `count` of `clientIds`, seeded by (seed, round): the same set of ids gives the same
 * sample whatever order they joined in. Returns ids sorted.
 */
export function sampleClients(clientIds: readonly string[], count: number, seed: number, round: number): string[] {
  const sorted = [...clientIds].sort();
  const n = Math.min(count, sorted.length);
  const rng = createRng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(round, 0x7feb352d)) >>> 0);
  return sampleWithoutReplacement(sorted.length, n, rng).map((i) => sorted[i]);
}

/** The state of one running round. */
export class RoundTracker {
  private readonly states = new Map<string, { state: ParticipantState; reason?: string }>();
  /** Time of the last accepted upload (the round's start when none). */
  lastUploadAt: number;

  constructor(
    readonly round: number,
    readonly sampled: readonly string[],
    readonly quorum: number,
    readonly startedAt: number,
    readonly deadline: number,
  ) {
    for (const id of sampled) this.states.set(id, { state: 'pending' });
    this.lastUploadAt = startedAt;
  }

  /** The state of a client, or undefined when it was not sampled. */
  stateOf(clientId: string): ParticipantState | undefined {
    return this.states.get(clientId)?.state;
  }

  /** Counts an accepted update; false when the client was not sampled or already counted. */
  report(clientId: string, now: number): boolean {
    const s = this.states.get(clientId);
    if (s === undefined || s.state === 'reported' || s.state === 'failed') return false;
    this.states.set(clientId, { state: 'reported' });
    this.lastUploadAt = now;
    return true;
  }

  /** The client's connection dropped; it may come back before the round closes. */
  disconnect(clientId: string): void {
    const s = this.states.get(clientId);
    if (s?.state === 'pending') this.states.set(clientId, { state: 'disconnected', reason: 'disconnected during the round' });
  }

  /** The client is back: true when it should get round_start again (it has not delivered). */
  reconnect(clientId: string): boolean {
    const s = this.states.get(clientId);
    if (s === undefined || s.state === 'reported' || s.state === 'failed') return false;
    this.states.set(clientId, { state: 'pending' });
    return true;
  }

  /** The client will not deliver this round (left, update rejected, cannot receive the round). */
  fail(clientId: string, reason: string): void {
    const s = this.states.get(clientId);
    if (s !== undefined && s.state !== 'reported') this.states.set(clientId, { state: 'failed', reason });
  }

  get reported(): string[] {
    return [...this.states].filter(([, s]) => s.state === 'reported').map(([id]) => id);
  }

  private count(state: ParticipantState): number {
    let n = 0;
    for (const s of this.states.values()) if (s.state === state) n++;
    return n;
  }

  /** Whether the round closes now, and why. */
  decide(now: number): 'wait' | 'all_reported' | 'deadline' {
    if (now >= this.deadline) return 'deadline';
    const pending = this.count('pending');
    const disconnected = this.count('disconnected');
    if (pending === 0 && disconnected === 0) return 'all_reported';
    if (pending === 0 && this.count('reported') >= this.quorum) return 'all_reported';
    return 'wait';
  }

  /** The sampled clients that did not deliver, with why (call when closing). */
  failures(closedBy: 'all_reported' | 'deadline' | 'stopped'): { clientId: string; reason: string }[] {
    const out: { clientId: string; reason: string }[] = [];
    for (const [clientId, s] of this.states) {
      if (s.state === 'reported') continue;
      const reason = s.state === 'pending'
        ? (closedBy === 'deadline' ? `no update before the deadline (${this.deadline - this.startedAt} ms after round_start)` : 'the coordinator stopped')
        : s.reason ?? s.state;
      out.push({ clientId, reason });
    }
    return out;
  }
}
