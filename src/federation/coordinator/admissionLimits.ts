/**
 * The coordinator's limits before authentication (docs/protocol.md §13), apart from the socket-level
 * ones the transport applies (transport/preAuth.ts): failed joins throttled per remote address
 * (`AuthThrottle`: after a few failures an address waits, exponentially longer, and its hellos are
 * refused without comparing the token), and the log of refused connections and hellos kept to a
 * few lines per address and minute, the rest summarised (`RejectionLog`). Both are pure over an
 * injected clock; `AdmissionLimits` wires them to the coordinator.
 */
import { addressKeyOfRemote, type PreAuthOptions, type Refusal, type RefusalReason } from '../transport/preAuth.js';
import type { Admission } from './handshake.js';

/** Settings (the `limits.*` of `CoordinatorConfig`); defaults in `DEFAULT_ADMISSION_LIMITS`. */
export interface AdmissionLimitSettings {
  /** Connections open at once, authenticated or not. */
  readonly maxConnections: number;
  /** Unauthenticated connections from one address (IPv4, or IPv6 /64). */
  readonly maxPendingPerAddress: number;
  /** Largest message before the hello is accepted. */
  readonly preAuthMaxFrameBytes: number;
  /** E_AUTH failures of one address within a minute before it is made to wait. */
  readonly authFailuresPerAddress: number;
  /** The first wait; it doubles with every further failure, up to `AUTH_MAX_BACKOFF_MS`. */
  readonly authBackoffMs: number;
  /** Refused connections and hellos of one address logged one by one per minute; the rest are summarised. */
  readonly rejectionsLoggedPerAddress: number;
}

export const DEFAULT_ADMISSION_LIMITS: AdmissionLimitSettings = {
  maxConnections: 1024,
  maxPendingPerAddress: 32,
  preAuthMaxFrameBytes: 64 * 1024,
  authFailuresPerAddress: 5,
  authBackoffMs: 1_000,
  rejectionsLoggedPerAddress: 10,
};

/** Failures older than this (after the last wait ended) are forgotten. */
export const AUTH_WINDOW_MS = 60_000;
/** Longest wait after failed joins. */
export const AUTH_MAX_BACKOFF_MS = 300_000;
/** The window rejections are counted and summarised over. */
export const LOG_WINDOW_MS = 60_000;
/** Rejections logged one by one per window over all addresses. */
export const LOG_TOTAL_PER_WINDOW = 100;
/** Connections beyond `maxClients` that `maxConnections` leaves room for by default (1000 + 24 = 1024). */
const DEFAULT_CONNECTION_HEADROOM = 24;
/** Shortest time from TCP connect to WebSocket upgrade allowed, whatever the hello timeout (TLS on a slow link). */
const MIN_UPGRADE_TIMEOUT_MS = 1_000;
/** Addresses remembered at once (throttle and log); the oldest are forgotten first. */
const MAX_TRACKED = 10_000;

/**
 * Settings with defaults for what `limits` lacks (a config, or a plan persisted before these
 * settings existed). Joined clients hold connections too, so `maxConnections` defaults to 1024, or to
 * `maxClients` + 24 when that is more.
 */
export function admissionSettings(limits: Partial<AdmissionLimitSettings> & { readonly maxFrameBytes: number }, maxClients: number): AdmissionLimitSettings {
  const d = DEFAULT_ADMISSION_LIMITS;
  const maxConnections = limits.maxConnections ?? Math.max(d.maxConnections, maxClients + DEFAULT_CONNECTION_HEADROOM);
  return {
    maxConnections,
    maxPendingPerAddress: limits.maxPendingPerAddress ?? Math.min(d.maxPendingPerAddress, maxConnections),
    preAuthMaxFrameBytes: limits.preAuthMaxFrameBytes ?? Math.min(d.preAuthMaxFrameBytes, limits.maxFrameBytes),
    authFailuresPerAddress: limits.authFailuresPerAddress ?? d.authFailuresPerAddress,
    authBackoffMs: limits.authBackoffMs ?? d.authBackoffMs,
    rejectionsLoggedPerAddress: limits.rejectionsLoggedPerAddress ?? d.rejectionsLoggedPerAddress,
  };
}

interface Failures {
  count: number;
  blockedUntil: number;
  lastSeen: number;
}

/**
 * Failed joins per address: the first `failures` in a window are free; the one that reaches it
 * blocks the address for `backoffMs`, each further one for twice as long as the one before (at most
 * `AUTH_MAX_BACKOFF_MS`). Attempts while blocked are not token checks and do not lengthen the wait,
 * but keep the record alive; it is forgotten `AUTH_WINDOW_MS` after the last attempt or wait.
 */
export class AuthThrottle {
  private readonly byKey = new Map<string, Failures>();

  constructor(private readonly failures: number, private readonly backoffMs: number) {}

  /** Milliseconds `key` must still wait (0: it may try). */
  blockedFor(key: string, now: number): number {
    const f = this.live(key, now);
    if (f === undefined || f.blockedUntil <= now) return 0;
    f.lastSeen = now;
    return f.blockedUntil - now;
  }

  /** Records a failed token check of `key`. */
  failed(key: string, now: number): void {
    const f = this.live(key, now) ?? { count: 0, blockedUntil: 0, lastSeen: now };
    f.count++;
    f.lastSeen = now;
    if (f.count >= this.failures) f.blockedUntil = now + Math.min(AUTH_MAX_BACKOFF_MS, this.backoffMs * 2 ** (f.count - this.failures));
    // Re-inserted at the end: the map's order is least recently failed first.
    this.byKey.delete(key);
    this.byKey.set(key, f);
    if (this.byKey.size > MAX_TRACKED) this.byKey.delete(this.byKey.keys().next().value!);
  }

  private live(key: string, now: number): Failures | undefined {
    const f = this.byKey.get(key);
    if (f !== undefined && now - Math.max(f.lastSeen, f.blockedUntil) > AUTH_WINDOW_MS) {
      this.byKey.delete(key);
      return undefined;
    }
    return f;
  }
}

/** A summary line: `count` rejections not logged one by one. */
export interface RejectionSummary {
  /** The address key, or `N addresses` for those past the total budget. */
  readonly remote: string;
  /** The most frequent code among them. */
  readonly code: string;
  readonly message: string;
}

interface Tally {
  logged: number;
  suppressed: number;
  readonly codes: Map<string, number>;
}

/**
 * Which rejections to log: per window of `LOG_WINDOW_MS`, the first `perAddress` of each address
 * and `LOG_TOTAL_PER_WINDOW` in all; the others are counted, and `flush` at the end of the window
 * returns one summary per address that had more, plus one for addresses past the total budget. So a
 * window logs at most 2 × LOG_TOTAL_PER_WINDOW + 1 lines, whatever the attack.
 */
export class RejectionLog {
  private start = -Infinity;
  private total = 0;
  private readonly byKey = new Map<string, Tally>();
  private readonly overflow: Tally & { keys: Set<string> } = { logged: 0, suppressed: 0, codes: new Map(), keys: new Set() };

  constructor(private readonly perAddress: number) {}

  /** When the current window ends (summaries are due). */
  get windowEnd(): number {
    return this.start + LOG_WINDOW_MS;
  }

  /** Whether to log this rejection of `key` one by one; counts it either way. */
  admit(key: string, code: string, now: number): { log: boolean; summaries: RejectionSummary[] } {
    let summaries: RejectionSummary[] = [];
    if (now >= this.windowEnd) {
      summaries = this.flush();
      this.start = now;
    }
    let tally = this.byKey.get(key);
    if (tally === undefined && this.total < LOG_TOTAL_PER_WINDOW && this.perAddress > 0 && this.byKey.size < MAX_TRACKED) {
      tally = { logged: 0, suppressed: 0, codes: new Map() };
      this.byKey.set(key, tally);
    }
    if (tally !== undefined && tally.logged < this.perAddress && this.total < LOG_TOTAL_PER_WINDOW) {
      tally.logged++;
      this.total++;
      return { log: true, summaries };
    }
    const into = tally ?? this.overflow;
    into.suppressed++;
    into.codes.set(code, (into.codes.get(code) ?? 0) + 1);
    if (tally === undefined && this.overflow.keys.size < MAX_TRACKED) this.overflow.keys.add(key);
    return { log: false, summaries };
  }

  /** Whether rejections wait to be summarised. */
  get pending(): boolean {
    return this.overflow.suppressed > 0 || [...this.byKey.values()].some((t) => t.suppressed > 0);
  }

  /** Ends the window: the summaries of what was not logged one by one. */
  flush(): RejectionSummary[] {
    const span = 'the last minute';
    const out: RejectionSummary[] = [];
    for (const [key, t] of this.byKey) {
      if (t.suppressed > 0) out.push({ remote: key, code: topCode(t.codes), message: `${t.suppressed} more rejected from ${key} in ${span} (${describeCodes(t.codes)}); not logged one by one` });
    }
    const o = this.overflow;
    if (o.suppressed > 0) {
      const who = `${o.keys.size}${o.keys.size >= MAX_TRACKED ? '+' : ''} addresses`;
      out.push({ remote: who, code: topCode(o.codes), message: `${o.suppressed} more rejected from ${who} in ${span} (${describeCodes(o.codes)}); not logged one by one` });
    }
    this.byKey.clear();
    o.suppressed = 0;
    o.codes.clear();
    o.keys.clear();
    this.total = 0;
    this.start = -Infinity;
    return out;
  }
}

function topCode(codes: ReadonlyMap<string, number>): string {
  return [...codes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'E_INTERNAL';
}

function describeCodes(codes: ReadonlyMap<string, number>): string {
  return [...codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ×${n}`).join(', ');
}

/** The protocol code a transport refusal is logged with. */
const REFUSAL_CODES: Record<RefusalReason, string> = {
  too_many_connections: 'E_FULL',
  too_many_pending: 'E_FULL',
  upgrade_timeout: 'E_TIMEOUT',
  frame_too_large: 'E_TOO_LARGE',
};

/** A rejection as the coordinator logs it (the `client_rejected` event). */
export interface RejectionEvent {
  readonly remote: string;
  readonly code: string;
  readonly message: string;
}

/** Dependencies of `AdmissionLimits`. */
export interface AdmissionLimitsDeps {
  /** Logs a rejection or a summary (the coordinator publishes `client_rejected`). */
  readonly log: (event: RejectionEvent) => void;
  readonly now?: () => number;
  /** Runs `fn` after `ms` (default: an unref'd timer); returns a cancel function. */
  readonly schedule?: (fn: () => void, ms: number) => () => void;
}

/** The coordinator's throttle and rejection log, over the settings of its plan. */
export class AdmissionLimits {
  private state: { readonly settings: AdmissionLimitSettings; readonly throttle: AuthThrottle; readonly log: RejectionLog } | undefined;
  private cancelFlush: (() => void) | undefined;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void, ms: number) => () => void;

  /** `settings` is read once, at first use (the coordinator's plan is set after this is built). */
  constructor(private readonly settings: () => AdmissionLimitSettings, private readonly deps: AdmissionLimitsDeps) {
    this.now = deps.now ?? Date.now;
    this.schedule = deps.schedule ?? ((fn, ms) => {
      const t = setTimeout(fn, ms);
      t.unref();
      return () => clearTimeout(t);
    });
  }

  /**
   * The verdict on a hello from `remote`: a throttled address is refused (E_THROTTLED with
   * `retryAfterMs`) without running `check`, which compares the token; an E_AUTH verdict of
   * `check` counts as a failure of the address.
   */
  screen(remote: string, check: () => Admission): Admission {
    const { throttle } = this.resolved();
    const key = addressKeyOfRemote(remote);
    const now = this.now();
    const wait = throttle.blockedFor(key, now);
    if (wait > 0) {
      return { ok: false, code: 'E_THROTTLED', message: `too many failed joins from ${key}; wait ${(wait / 1000).toFixed(1)} s before trying again`, retryAfterMs: Math.ceil(wait) };
    }
    const verdict = check();
    if (!verdict.ok && verdict.code === 'E_AUTH') throttle.failed(key, now);
    return verdict;
  }

  /** Whether to log this rejection of an unauthenticated peer one by one (else it is summarised later). */
  shouldLog(remote: string, code: string): boolean {
    const { log } = this.resolved();
    const now = this.now();
    const { log: yes, summaries } = log.admit(addressKeyOfRemote(remote), code, now);
    for (const s of summaries) this.deps.log(s);
    if (!yes) this.armFlush(log, now);
    return yes;
  }

  /** The transport options of these limits (the upgrade must come within the hello timeout, at least 1 s); refused connections are logged here. */
  preAuthOptions(helloTimeoutMs: number): PreAuthOptions {
    const s = this.resolved().settings;
    return {
      maxConnections: s.maxConnections,
      maxPendingPerAddress: s.maxPendingPerAddress,
      maxFrameBytes: s.preAuthMaxFrameBytes,
      upgradeTimeoutMs: Math.max(MIN_UPGRADE_TIMEOUT_MS, helloTimeoutMs),
      onRefused: (r: Refusal) => {
        const code = REFUSAL_CODES[r.reason];
        if (this.shouldLog(r.remote, code)) this.deps.log({ remote: r.remote, code, message: r.message });
      },
    };
  }

  /** Logs the summaries of the current window now instead of at its end (tests, shutdown). */
  flushSummaries(): void {
    this.cancelFlush?.();
    this.cancelFlush = undefined;
    if (this.state !== undefined) { for (const s of this.state.log.flush()) this.deps.log(s); }
  }

  /** Summaries are due at the end of the window: one timer while some wait. */
  private armFlush(log: RejectionLog, now: number): void {
    if (this.cancelFlush !== undefined) return;
    this.cancelFlush = this.schedule(() => {
      this.cancelFlush = undefined;
      const at = this.now();
      // A rejection after the window may already have rolled it over (and logged its summaries).
      if (at < log.windowEnd) {
        if (log.pending) this.armFlush(log, at);
        return;
      }
      for (const s of log.flush()) this.deps.log(s);
    }, Math.max(0, log.windowEnd - now));
  }

  private resolved(): NonNullable<AdmissionLimits['state']> {
    if (this.state === undefined) {
      const settings = this.settings();
      this.state = { settings, throttle: new AuthThrottle(settings.authFailuresPerAddress, settings.authBackoffMs), log: new RejectionLog(settings.rejectionsLoggedPerAddress) };
    }
    return this.state;
  }
}
