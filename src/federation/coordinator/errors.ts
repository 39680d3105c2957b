/** Errors of the coordinator: a stable code and one sentence naming the option, file or round. */

/**
 * `CONFIG_INVALID` (an option is out of range or inconsistent), `RUN_DIR_IN_USE` (a new run in a
 * directory that already holds one), `RUN_DIR_LOCKED` (another live coordinator holds the run
 * directory's lock), `RESUME_FAILED` (the run directory is missing or inconsistent),
 * `PERSIST_FAILED` (state could not be written), `STOPPED` (the coordinator was stopped before the
 * federation finished), `NOT_STARTED` (an operation that needs `start()` first).
 */
export type CoordinatorErrorCode = 'CONFIG_INVALID' | 'RUN_DIR_IN_USE' | 'RUN_DIR_LOCKED' | 'RESUME_FAILED' | 'PERSIST_FAILED' | 'STOPPED' | 'NOT_STARTED';

export class CoordinatorError extends Error {
  override readonly name = 'CoordinatorError';
  constructor(readonly code: CoordinatorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
