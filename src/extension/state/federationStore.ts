/**
 * Every federation the extension knows (started here, joined, or listed in settings): its folded
 * state (the one the sidebar and the dashboard show) and its event history (kept for the report a
 * federation without a CLI report exports). Listeners hear about every change. No vscode here.
 */
import { federationExited, initialFederation, reduceFederation } from './federationState.js';
import type { FederationEvent, FederationState } from './federationState.js';

/** What changed. `events` is set when events were appended (in stream order). */
export interface StoreChange {
  readonly kind: 'added' | 'updated' | 'removed';
  readonly id: string;
  readonly events?: readonly FederationEvent[];
}

/** Unsubscribes a listener. */
export interface Subscription {
  dispose(): void;
}

/** Most events kept per federation; beyond it the oldest `client_progress` events are dropped first. */
export const MAX_EVENTS_PER_FEDERATION = 50_000;

interface Entry {
  state: FederationState;
  events: FederationEvent[];
  dropped: number;
}

/** The federations and their histories. */
export class FederationStore {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(change: StoreChange) => void>();

  constructor(private readonly maxEvents: number = MAX_EVENTS_PER_FEDERATION) {}

  /** Adds (or replaces, clearing its history) a federation. */
  add(init: Parameters<typeof initialFederation>[0]): FederationState {
    const existed = this.entries.has(init.id);
    const state = initialFederation(init);
    this.entries.set(init.id, { state, events: [], dropped: 0 });
    this.emit({ kind: existed ? 'updated' : 'added', id: init.id });
    return state;
  }

  /** Removes a federation and its history. */
  remove(id: string): void {
    if (this.entries.delete(id)) this.emit({ kind: 'removed', id });
  }

  /** Applies events of one federation's stream (ignored when the id is unknown). */
  apply(id: string, events: readonly FederationEvent[]): void {
    const entry = this.entries.get(id);
    if (entry === undefined || events.length === 0) return;
    for (const event of events) {
      entry.state = reduceFederation(entry.state, event);
      entry.events.push(event);
    }
    this.trim(entry);
    this.emit({ kind: 'updated', id, events });
  }

  /** Marks a federation's process as ended (`lastLog`: its last stderr line, the reason of a failure without an event). */
  exited(id: string, exit: Parameters<typeof federationExited>[1], lastLog?: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    entry.state = federationExited(entry.state, exit, lastLog);
    this.emit({ kind: 'updated', id });
  }

  /** Changes fields that do not come from events (label, live, url). */
  patch(id: string, patch: Partial<Pick<FederationState, 'label' | 'live' | 'url' | 'phase' | 'lastError'>>): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    entry.state = { ...entry.state, ...patch };
    this.emit({ kind: 'updated', id });
  }

  get(id: string): FederationState | undefined {
    return this.entries.get(id)?.state;
  }

  /** Every federation, in the order they were added. */
  list(): FederationState[] {
    return [...this.entries.values()].map((e) => e.state);
  }

  /** The event history of one federation (a copy). */
  events(id: string): FederationEvent[] {
    return [...(this.entries.get(id)?.events ?? [])];
  }

  /** How many events were dropped from a federation's history to respect the cap. */
  droppedEvents(id: string): number {
    return this.entries.get(id)?.dropped ?? 0;
  }

  /** The federation the status bar follows: the most recently started live one, else the latest. */
  active(): FederationState | undefined {
    const started = this.list().filter((s) => s.kind !== 'remote' || s.live);
    const live = started.filter((s) => s.live);
    return (live.length > 0 ? live : started).at(-1);
  }

  /** Subscribes to changes. */
  onDidChange(listener: (change: StoreChange) => void): Subscription {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private emit(change: StoreChange): void {
    for (const l of [...this.listeners]) l(change);
  }

  private trim(entry: Entry): void {
    const excess = entry.events.length - this.maxEvents;
    if (excess <= 0) return;
    // Progress ticks are the bulk and the least valuable; structural events (round_closed…) stay.
    let toDrop = excess;
    const kept = entry.events.filter((e) => {
      if (toDrop > 0 && e.type === 'client_progress') {
        toDrop--;
        return false;
      }
      return true;
    });
    const stillOver = kept.length - this.maxEvents;
    entry.events = stillOver > 0 ? kept.slice(stillOver) : kept;
    entry.dropped += excess;
  }
}
