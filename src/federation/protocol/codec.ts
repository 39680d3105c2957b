/**
 * The two calls both ends use: `encodeMessage` (typed message → frame bytes, validated as strictly
 * as a receiver would) and `decodeMessage` (bytes → typed message, or a `ProtocolError`).
 */
import type { AdapterForm, AdapterLayout } from './adapterTensors.js';
import { encodeFloatTensor, firstNonFiniteIndex, type FloatWireDType } from './dtypes.js';
import type { AnyMessage, AnyOutgoingMessage } from './envelope.js';
import { ProtocolError, protocolError, type ProtocolErrorCode } from './errors.js';
import { decodeFrame, elementCount, encodeFrame, type FrameTensorInput } from './frame.js';
import { descriptorFor, type ParamsOf } from './messages.js';
import { BLOB_TENSOR, validateFrame, validateParams, validateTensorSet, type ReceiveOptions } from './validate.js';

/** Sender-side options. */
export interface SendOptions {
  /** Dtype of client_update tensors (welcome.config.uplinkDtype); other float tensors are float32. */
  readonly uplinkDtype?: FloatWireDType;
  /** Checks tensor names and shapes against the layout before sending. */
  readonly layout?: AdapterLayout;
  /** How adapters travel (`sb` for Fed-SB; default `lora`); see ReceiveOptions.adapterForm. */
  readonly adapterForm?: AdapterForm;
  /** The peer's frame limit (hello.capabilities / welcome.limits): refuse to build a bigger frame. */
  readonly maxFrameBytes?: number;
}

/** Result of `tryDecodeMessage`. */
export type DecodeResult = { readonly ok: true; readonly message: AnyMessage } | { readonly ok: false; readonly error: ProtocolError };

/** True when a float16/bfloat16 encoding produced an infinity or NaN (overflow on down-cast). */
function halfOverflowIndex(bytes: Uint8Array, dtype: FloatWireDType): number {
  if (dtype === 'float32') return -1;
  const mask = dtype === 'float16' ? 0x7c00 : 0x7f80;
  for (let i = 0; i < bytes.length; i += 2) {
    if (((bytes[i] | (bytes[i + 1] << 8)) & mask) === mask) return i / 2;
  }
  return -1;
}

/**
 * Encodes a message into one frame. Checks params (E_SCHEMA), tensor data lengths and shapes
 * (E_TENSOR_SHAPE), the tensor set the method carries (E_TENSOR_NAME/_SHAPE/_DTYPE), finite values
 * including float16/bfloat16 overflow (E_NON_FINITE), and the peer's frame limit (E_TOO_LARGE).
 */
export function encodeMessage(message: AnyOutgoingMessage, options: SendOptions = {}): Uint8Array {
  const descriptor = descriptorFor(message.method);
  if (descriptor === undefined) throw protocolError('E_UNKNOWN_METHOD', `encodeMessage: unknown method ${String(message.method)}`);
  validateParams(descriptor, message.params);
  const dtype: FloatWireDType = descriptor.tensors === 'adapter' ? (options.uplinkDtype ?? 'float32') : 'float32';
  const inputs: FrameTensorInput[] = [];
  for (const t of message.tensors ?? []) {
    if (elementCount(t.shape) !== t.data.length) {
      throw protocolError('E_TENSOR_SHAPE', `encodeMessage ${message.method}: tensor ${t.name} has ${t.data.length} values, shape [${t.shape.join(', ')}] needs ${elementCount(t.shape)}`);
    }
    const bad = firstNonFiniteIndex(t.data);
    if (bad >= 0) throw protocolError('E_NON_FINITE', `encodeMessage ${message.method}: tensor ${t.name} holds ${t.data[bad]} at flat index ${bad}`);
    const bytes = encodeFloatTensor(t.data, dtype);
    const overflow = halfOverflowIndex(bytes, dtype);
    if (overflow >= 0) throw protocolError('E_NON_FINITE', `encodeMessage ${message.method}: tensor ${t.name} value ${t.data[overflow]} at flat index ${overflow} overflows ${dtype}`);
    inputs.push({ name: t.name, dtype, shape: t.shape, bytes });
  }
  if (message.blob !== undefined) inputs.push({ name: BLOB_TENSOR, dtype: 'uint8', shape: [message.blob.length], bytes: message.blob });
  validateTensorSet(descriptor, message.params, inputs, { layout: options.layout, uplinkDtypes: [dtype], ...(options.adapterForm !== undefined ? { adapterForm: options.adapterForm } : {}) });
  const frame = encodeFrame(message.method, message.params, inputs);
  if (options.maxFrameBytes !== undefined && frame.length > options.maxFrameBytes) {
    throw protocolError('E_TOO_LARGE', `encodeMessage ${message.method}: frame of ${frame.length} bytes exceeds the peer's limit of ${options.maxFrameBytes}`);
  }
  return frame;
}

/**
 * Decodes and validates one frame. Throws only `ProtocolError`, whatever the bytes: an unexpected
 * failure inside becomes `E_INTERNAL` rather than escaping as another type.
 */
export function decodeMessage(bytes: Uint8Array, options: ReceiveOptions = {}): AnyMessage {
  try {
    return validateFrame(decodeFrame(bytes, options.limits), options);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw protocolError('E_INTERNAL', `decodeMessage: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** `decodeMessage` as a result value, for loops that answer errors instead of unwinding. */
export function tryDecodeMessage(bytes: Uint8Array, options: ReceiveOptions = {}): DecodeResult {
  try {
    return { ok: true, message: decodeMessage(bytes, options) };
  } catch (err) {
    return { ok: false, error: err as ProtocolError };
  }
}

// With the u flag a surrogate pair is one code point, so [\uD800-\uDFFF] matches lone surrogates only.
const UNSAFE_TEXT = /[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\uD800-\uDFFF]/gu;

/** Makes any string a valid `text` field: unsafe characters become U+FFFD, at most `max` code points. */
export function safeText(text: string, max = 1024): string {
  return [...text.replace(UNSAFE_TEXT, '\uFFFD')].slice(0, max).join('');
}

/** Params of an `error` message reporting `err` (its message made safe to send). */
export function errorParams(err: { code: ProtocolErrorCode; message: string }, fatal: boolean, round?: number): ParamsOf<'error'> {
  return { code: err.code, message: safeText(err.message), fatal, ...(round !== undefined ? { round } : {}) };
}
