/**
 * Exponential backoff with jitter for reconnecting (docs/protocol.md §7.5: 0.5 s doubling to 30 s)
 * and an abortable sleep. Pure apart from `sleep`; the random source is injectable for tests.
 */
import { TransportError } from './types.js';

/** How retries are spaced. */
export interface BackoffOptions {
  /** Delay before the first retry (default 500 ms). */
  readonly initialDelayMs?: number;
  /** Largest delay (default 30 000 ms). */
  readonly maxDelayMs?: number;
  /** Growth per attempt (default 2). */
  readonly factor?: number;
  /** Fraction of the delay that is random, 0..1 (default 0.5: the delay is uniform in [d/2, d]). */
  readonly jitter?: number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry): d = min(max, initial·factor^attempt),
 * then uniform in [d·(1 − jitter), d]. Jitter spreads the reconnects of many clients after an outage.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialDelayMs ?? 500;
  const max = options.maxDelayMs ?? 30_000;
  const factor = options.factor ?? 2;
  const jitter = options.jitter ?? 0.5;
  if (!(initial >= 0) || !(max >= initial) || !(factor >= 1) || !(jitter >= 0 && jitter <= 1) || !(attempt >= 0)) {
    throw new TransportError('T_OPTIONS', `backoffDelay: need attempt ≥ 0, 0 ≤ initialDelayMs ≤ maxDelayMs, factor ≥ 1, jitter in [0, 1]; got attempt ${attempt}, ${JSON.stringify(options)}`);
  }
  const base = Math.min(max, initial * factor ** Math.min(attempt, 64));
  return base * (1 - jitter + jitter * random());
}

/** Resolves after `ms`, or rejects `T_ABORTED` as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new TransportError('T_ABORTED', 'sleep: aborted'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new TransportError('T_ABORTED', 'sleep: aborted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
