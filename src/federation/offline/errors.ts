/** Errors of offline aggregation: a stable code and one sentence naming the file, module or tensor. */
export type AggregationErrorCode =
  | 'NO_ADAPTERS'
  | 'BAD_WEIGHTS'
  | 'BASE_NOT_FOUND'
  | 'BASE_DTYPE'
  | 'BASE_INVALID'
  | 'ADAPTER_MISMATCH'
  | 'OUTPUT_EXISTS'
  | 'NOTHING_USABLE'
  | 'OUTPUT_COMMIT';

export class AggregationInputError extends Error {
  constructor(readonly code: AggregationErrorCode, message: string) {
    super(message);
    this.name = 'AggregationInputError';
  }
}
