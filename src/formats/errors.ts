/**
 * The one error class of src/formats. Every error carries a stable `code` (for tests, the CLI and
 * the wire) and a message that names the file and, where there is one, the tensor or field.
 */

/** Stable codes of {@link FormatError}. */
export type FormatErrorCode =
  // files
  | 'FILE_NOT_FOUND'
  // safetensors, reading
  | 'SAFETENSORS_TRUNCATED'
  | 'SAFETENSORS_HEADER_TOO_LARGE'
  | 'SAFETENSORS_INVALID_HEADER'
  | 'SAFETENSORS_UNKNOWN_DTYPE'
  | 'SAFETENSORS_INVALID_SHAPE'
  | 'SAFETENSORS_INVALID_OFFSETS'
  | 'SAFETENSORS_OVERLAP'
  | 'SAFETENSORS_GAP'
  | 'SAFETENSORS_SIZE_MISMATCH'
  | 'SAFETENSORS_TRAILING_DATA'
  | 'SAFETENSORS_TENSOR_NOT_FOUND'
  | 'SAFETENSORS_NOT_FLOAT'
  | 'SAFETENSORS_CLOSED'
  // safetensors, writing
  | 'SAFETENSORS_WRITE_INVALID'
  | 'SAFETENSORS_WRITE_INCOMPLETE'
  // config.json
  | 'CONFIG_INVALID_JSON'
  | 'CONFIG_UNSUPPORTED_MODEL'
  | 'CONFIG_INVALID_FIELD'
  // PEFT adapters
  | 'PEFT_CONFIG_INVALID'
  | 'PEFT_UNSUPPORTED'
  | 'PEFT_MISSING_TENSOR'
  | 'PEFT_RANK_MISMATCH'
  | 'PEFT_SHAPE_MISMATCH'
  | 'PEFT_NON_FINITE'
  | 'PEFT_TARGET_MISMATCH'
  // base-model keys
  | 'KEY_NOT_FOUND'
  | 'BASE_SHAPE_MISMATCH';

/** Where an error happened: the file (or folder) and, if any, the tensor or field. */
export interface FormatErrorContext {
  readonly file?: string;
  readonly tensor?: string;
}

/** A malformed, truncated or inconsistent file, or a request the file cannot satisfy. */
export class FormatError extends Error {
  readonly code: FormatErrorCode;
  readonly file: string | undefined;
  readonly tensor: string | undefined;

  constructor(code: FormatErrorCode, message: string, context: FormatErrorContext = {}, options?: { cause?: unknown }) {
    super(`${prefix(context)}${message}`, options);
    this.name = 'FormatError';
    this.code = code;
    this.file = context.file;
    this.tensor = context.tensor;
  }
}

function prefix(context: FormatErrorContext): string {
  if (context.file !== undefined && context.tensor !== undefined) return `${context.file}: tensor '${context.tensor}': `;
  if (context.file !== undefined) return `${context.file}: `;
  if (context.tensor !== undefined) return `tensor '${context.tensor}': `;
  return '';
}

/** True for Node's "no such file" errors. */
export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}
