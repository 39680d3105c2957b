/** Cancellation for the trainer: an `AbortError` like the ones Node's own APIs throw. */

/** Raised when a run or evaluation is stopped through its AbortSignal. `name` is 'AbortError'. */
export class TrainerAbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(message = 'training was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** What the trainer reads of an AbortSignal (the worker passes a view of a shared flag). */
export interface AbortLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
}

/** True for any AbortError (ours, Node's, or a DOMException). */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/** Throws a {@link TrainerAbortError} naming `what` when the signal has fired. */
export function throwIfAborted(signal: AbortLike | undefined, what: string): void {
  if (signal?.aborted === true) {
    const reason: unknown = signal.reason;
    const detail = reason instanceof Error && !isAbortError(reason) ? `: ${reason.message}` : '';
    throw new TrainerAbortError(`${what} was aborted${detail}`, { cause: reason });
  }
}
