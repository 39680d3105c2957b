/** Errors of `fedex export`: a stable code and one sentence naming the run, folder or module. */
export type ExportErrorCode = 'EXPORT_SOURCE' | 'EXPORT_BASE' | 'EXPORT_OPTIONS' | 'EXPORT_CHECK';

export class ExportError extends Error {
  constructor(readonly code: ExportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExportError';
  }
}
