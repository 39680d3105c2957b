/**
 * Protocol errors: one class, stable codes, a human message (like `ws`'s `createError`). Every
 * failure to decode, validate or follow the protocol becomes a `ProtocolError`; the codes travel on
 * the wire in `reject`, `update_rejected` and `error` messages and are listed in docs/protocol.md.
 */

/**
 * Stable error codes. Never renumber or reuse one; new codes may be added in a minor version, so
 * receivers must accept codes they do not know (the wire field is the schema's `code` format, not this list).
 */
export const ERROR_CODES = {
  E_TOO_LARGE: 'The frame, its header or its tensor count exceeds a configured limit.',
  E_TRUNCATED: 'The frame ends before its fixed prefix or its JSON header.',
  E_MAGIC: 'The frame does not start with the magic bytes "FEDX".',
  E_VERSION: 'The frame or the handshake names a protocol major version this peer does not speak.',
  E_MALFORMED: 'The header is not UTF-8 JSON of the right envelope shape, or reserved bits are set.',
  E_UNKNOWN_METHOD: 'The header names a method that is not in the catalogue.',
  E_DIRECTION: 'The method exists but may not be sent by this peer (e.g. a client sending welcome).',
  E_SCHEMA: 'The params miss a required field, carry an unknown one, or a field has the wrong type or range.',
  E_TENSOR_TABLE: 'A tensor table entry is malformed or misaligned, or its byte length does not match its shape and dtype.',
  E_TENSOR_BOUNDS: 'A tensor lies (partly) outside the data section, or bytes trail after the last tensor.',
  E_TENSOR_OVERLAP: 'Two tensors share bytes of the data section.',
  E_TENSOR_DTYPE: 'A tensor dtype is unknown or not allowed for this message.',
  E_TENSOR_NAME: 'A tensor is missing, unexpected, duplicated, or badly named for this message.',
  E_TENSOR_SHAPE: 'A tensor has the wrong shape for the adapter layout or the residual it belongs to.',
  E_NON_FINITE: 'A tensor holds NaN or an infinity (or would, after a down-cast on encoding).',
  E_NORM_BOUND: 'The update norm exceeds the configured bound.',
  E_AUTH: 'The join token is missing or wrong.',
  E_STATE: 'The message is not allowed in the current session state (e.g. client_update before welcome).',
  E_ROUND_CLOSED: 'The update is for a round that is already closed.',
  E_ROUND_MISMATCH: 'The message names a round that is not the current one (and not a closed one).',
  E_DUPLICATE: 'A second update for the same round from the same client.',
  E_BASE_MISMATCH: 'The base model (content hash or revision) differs from the one the federation uses.',
  E_MODEL_TRANSFER: 'A model_request names an unknown file or a byte range outside it, or transfer is not offered.',
  E_FULL: 'The federation accepts no more clients.',
  E_SHUTDOWN: 'The peer is shutting down.',
  E_TIMEOUT: 'The peer waited too long (handshake, heartbeat or round deadline).',
  E_INTERNAL: 'An unexpected failure inside the peer; the message says what.',
  E_FROZEN_A: 'FFA-LoRA: an uploaded lora_A is not bit-identical to the global (frozen) lora_A (protocol 1.1).',
  E_THROTTLED: 'Too many failed joins from this address: the hello was not checked; retry after retryAfterMs (protocol 1.1).',
  E_RANK: 'The rank a hello asks to train at is not one the federation allows (protocol 1.3).',
} as const;

/** A stable protocol error code such as `E_SCHEMA`. */
export type ProtocolErrorCode = keyof typeof ERROR_CODES;

/** The one error type of the protocol layer: `code` is stable, `message` is for people. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.code = code;
  }

  /** `{ code, message }`, the shape that `error`, `reject` and `update_rejected` carry. */
  toJSON(): { code: ProtocolErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Builds a `ProtocolError` (the `createError` of this layer). */
export function protocolError(code: ProtocolErrorCode, message: string): ProtocolError {
  return new ProtocolError(code, message);
}

/** True for a `ProtocolError`. */
export function isProtocolError(value: unknown): value is ProtocolError {
  return value instanceof ProtocolError;
}

/** True when `code` is one of the codes this version knows. */
export function isKnownErrorCode(code: string): code is ProtocolErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
