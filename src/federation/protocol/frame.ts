/**
 * Binary frames, method-agnostic. One WebSocket binary message is one frame:
 *
 *   0  magic "FEDX" (4 bytes)        4  major version, u16 LE        6  flags, u16 LE (0)
 *   8  header length H, u32 LE       12 header: UTF-8 JSON, space-padded so 12 + H ≡ 0 (mod 8)
 *   12 + H  data section: raw little-endian tensor bytes, each tensor at an 8-aligned offset
 *
 * The header is `{"method": string, "params": object, "tensors": [{name, dtype, shape, offset,
 * length}]}` with offsets relative to the data section. `decodeFrame` checks everything about the
 * frame itself (limits, magic, version, JSON, tensor table) and throws only `ProtocolError`;
 * message-level checks live in validate.ts.
 */
import { DEFAULT_LIMITS, MAGIC, MAX_DIM, MAX_DIMS, PREFIX_BYTES, PROTOCOL_MAJOR, TENSOR_ALIGN, type FrameLimits } from './constants.js';
import { ITEM_SIZE, isWireDType, type WireDType } from './dtypes.js';
import { protocolError } from './errors.js';
import { STRING_FORMATS } from './schema.js';

/** One entry of the tensor table. */
export interface TableEntry {
  readonly name: string;
  readonly dtype: WireDType;
  readonly shape: readonly number[];
  /** Byte offset inside the data section, a multiple of 8. */
  readonly offset: number;
  /** Byte length: product(shape) × itemsize. */
  readonly length: number;
}

/** A tensor to put in a frame: its encoded little-endian bytes. */
export interface FrameTensorInput {
  readonly name: string;
  readonly dtype: WireDType;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/** A decoded frame: the header and a view of the data section (not a copy). */
export interface RawFrame {
  readonly method: string;
  readonly params: unknown;
  readonly tensors: readonly TableEntry[];
  readonly data: Uint8Array;
}

/** Method names on the wire (known or not): lower snake case. */
const METHOD_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;
/** Longest tensor name. */
export const MAX_TENSOR_NAME = 300;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function align(n: number): number {
  return Math.ceil(n / TENSOR_ALIGN) * TENSOR_ALIGN;
}

/** Number of elements of a shape, or -1 if a dimension is invalid or the product is unsafe. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0 || d > MAX_DIM) return -1;
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return -1;
  }
  return n;
}

/**
 * Encodes a frame. Tensors are laid out in the given order, each at the next 8-aligned offset.
 * The caller (codec.ts) has validated params and tensors; this checks only byte lengths.
 */
export function encodeFrame(method: string, params: unknown, tensors: readonly FrameTensorInput[]): Uint8Array {
  const table: TableEntry[] = [];
  let end = 0;
  for (const t of tensors) {
    const count = elementCount(t.shape);
    const length = count * ITEM_SIZE[t.dtype];
    if (count < 0 || t.bytes.length !== length) {
      throw protocolError('E_TENSOR_TABLE', `encodeFrame: tensor ${t.name} has ${t.bytes.length} bytes, shape [${t.shape.join(', ')}] of ${t.dtype} needs ${length}`);
    }
    const offset = align(end);
    table.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], offset, length });
    end = offset + length;
  }
  const json = encoder.encode(JSON.stringify({ method, params, tensors: table }));
  const headerLength = align(PREFIX_BYTES + json.length) - PREFIX_BYTES;
  const frame = new Uint8Array(PREFIX_BYTES + headerLength + end);
  frame.set(MAGIC, 0);
  const view = new DataView(frame.buffer);
  view.setUint16(4, PROTOCOL_MAJOR, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, headerLength, true);
  frame.set(json, PREFIX_BYTES);
  frame.fill(0x20, PREFIX_BYTES + json.length, PREFIX_BYTES + headerLength);
  const dataStart = PREFIX_BYTES + headerLength;
  tensors.forEach((t, i) => frame.set(t.bytes, dataStart + table[i].offset));
  return frame;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasExactKeys(value: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(value);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(value, k));
}

const ENTRY_KEYS = ['name', 'dtype', 'shape', 'offset', 'length'] as const;

function parseEntry(raw: unknown, index: number, seen: Set<string>): TableEntry {
  const where = `tensor table entry ${index}`;
  if (!isRecord(raw) || !hasExactKeys(raw, ENTRY_KEYS)) {
    throw protocolError('E_TENSOR_TABLE', `${where}: expected an object with exactly the keys ${ENTRY_KEYS.join(', ')}`);
  }
  const { name, dtype, shape, offset, length } = raw;
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_TENSOR_NAME || !STRING_FORMATS.module.test(name)) {
    throw protocolError('E_TENSOR_NAME', `${where}: name is not a dot-separated identifier of at most ${MAX_TENSOR_NAME} characters`);
  }
  if (seen.has(name)) throw protocolError('E_TENSOR_NAME', `${where}: tensor ${name} appears twice`);
  seen.add(name);
  if (!isWireDType(dtype)) throw protocolError('E_TENSOR_DTYPE', `tensor ${name}: unknown dtype ${JSON.stringify(String(dtype).slice(0, 20))}`);
  if (!Array.isArray(shape) || shape.length > MAX_DIMS || !shape.every((d) => Number.isInteger(d) && d >= 0 && d <= MAX_DIM)) {
    throw protocolError('E_TENSOR_TABLE', `tensor ${name}: shape must be at most ${MAX_DIMS} integers in 0..${MAX_DIM}`);
  }
  if (!Number.isSafeInteger(offset) || (offset as number) < 0 || !Number.isSafeInteger(length) || (length as number) < 0) {
    throw protocolError('E_TENSOR_TABLE', `tensor ${name}: offset and length must be non-negative integers`);
  }
  if ((offset as number) % TENSOR_ALIGN !== 0) throw protocolError('E_TENSOR_TABLE', `tensor ${name}: offset ${offset} is not a multiple of ${TENSOR_ALIGN}`);
  const count = elementCount(shape as number[]);
  if (count < 0 || count * ITEM_SIZE[dtype] !== length) {
    throw protocolError('E_TENSOR_TABLE', `tensor ${name}: length ${length} ≠ product of shape [${shape.join(', ')}] × ${ITEM_SIZE[dtype]} bytes (${dtype})`);
  }
  return { name, dtype, shape: shape as number[], offset: offset as number, length: length as number };
}

/** Checks bounds, overlap and trailing bytes of a parsed table against the data section length. */
function checkLayout(entries: readonly TableEntry[], dataLength: number): void {
  let maxEnd = 0;
  for (const e of entries) {
    if (e.offset + e.length > dataLength) {
      throw protocolError('E_TENSOR_BOUNDS', `tensor ${e.name}: bytes [${e.offset}, ${e.offset + e.length}) lie outside the ${dataLength}-byte data section`);
    }
    maxEnd = Math.max(maxEnd, e.offset + e.length);
  }
  const sorted = entries.filter((e) => e.length > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].offset < prev.offset + prev.length) {
      throw protocolError('E_TENSOR_OVERLAP', `tensors ${prev.name} and ${sorted[i].name} overlap at byte ${sorted[i].offset}`);
    }
  }
  if (dataLength > align(maxEnd)) {
    throw protocolError('E_TENSOR_BOUNDS', `${dataLength - maxEnd} bytes trail after the last tensor (at most ${TENSOR_ALIGN - 1} padding bytes allowed)`);
  }
}

/**
 * Decodes a frame's prefix, header and tensor table. Checks, in order: size limit (before reading
 * anything), prefix length, magic, version, flags, header length and alignment, UTF-8 JSON, the
 * envelope, every table entry, then bounds/overlap/trailing bytes. Throws only `ProtocolError`.
 */
export function decodeFrame(input: Uint8Array, limits: Partial<FrameLimits> = {}): RawFrame {
  const { maxFrameBytes, maxHeaderBytes, maxTensors } = { ...DEFAULT_LIMITS, ...limits };
  if (input.byteLength > maxFrameBytes) throw protocolError('E_TOO_LARGE', `frame of ${input.byteLength} bytes exceeds the limit of ${maxFrameBytes}`);
  // A plain view: Buffer#slice shares memory, Uint8Array#slice copies; be explicit about which.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (bytes.length < PREFIX_BYTES) throw protocolError('E_TRUNCATED', `frame of ${bytes.length} bytes is shorter than the ${PREFIX_BYTES}-byte prefix`);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw protocolError('E_MAGIC', 'frame does not start with the magic bytes "FEDX"');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(4, true);
  if (version !== PROTOCOL_MAJOR) throw protocolError('E_VERSION', `frame has protocol major version ${version}, this peer speaks ${PROTOCOL_MAJOR}`);
  const flags = view.getUint16(6, true);
  if (flags !== 0) throw protocolError('E_MALFORMED', `frame flags are 0x${flags.toString(16)}, reserved bits must be 0`);
  const headerLength = view.getUint32(8, true);
  if (headerLength > maxHeaderBytes) throw protocolError('E_TOO_LARGE', `header of ${headerLength} bytes exceeds the limit of ${maxHeaderBytes}`);
  if (PREFIX_BYTES + headerLength > bytes.length) throw protocolError('E_TRUNCATED', `header needs ${headerLength} bytes, the frame has ${bytes.length - PREFIX_BYTES} after the prefix`);
  if ((PREFIX_BYTES + headerLength) % TENSOR_ALIGN !== 0) throw protocolError('E_MALFORMED', `12 + header length ${headerLength} is not a multiple of ${TENSOR_ALIGN}`);

  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength)));
  } catch (err) {
    throw protocolError('E_MALFORMED', `header is not UTF-8 JSON: ${err instanceof Error ? err.message.slice(0, 120) : 'unreadable'}`);
  }
  if (!isRecord(header) || !hasExactKeys(header, ['method', 'params', 'tensors'])) {
    throw protocolError('E_MALFORMED', 'header must be a JSON object with exactly the keys method, params, tensors');
  }
  const { method, params, tensors } = header;
  if (typeof method !== 'string' || !METHOD_PATTERN.test(method)) throw protocolError('E_MALFORMED', 'header.method must be a lower_snake_case string of at most 64 characters');
  if (!isRecord(params)) throw protocolError('E_MALFORMED', `header.params of ${method} must be a JSON object`);
  if (!Array.isArray(tensors)) throw protocolError('E_MALFORMED', `header.tensors of ${method} must be an array`);
  if (tensors.length > maxTensors) throw protocolError('E_TOO_LARGE', `${tensors.length} tensors exceed the limit of ${maxTensors}`);

  const seen = new Set<string>();
  const entries = tensors.map((raw, i) => parseEntry(raw, i, seen));
  const data = bytes.subarray(PREFIX_BYTES + headerLength);
  checkLayout(entries, data.length);
  return { method, params, tensors: entries, data };
}

/** The bytes of one table entry inside a decoded frame (a view, not a copy). */
export function entryBytes(frame: RawFrame, entry: TableEntry): Uint8Array {
  return frame.data.subarray(entry.offset, entry.offset + entry.length);
}
