/**
 * The safetensors header: dtypes, parsing with the checks of the reference implementation
 * (huggingface/safetensors), and serialisation byte-for-byte as it writes it.
 *
 * Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON (padded with spaces to a
 * multiple of 8), then the data section, covered exactly and contiguously by the tensors'
 * `data_offsets` (relative to the start of the data section).
 */
import { FormatError } from './errors.js';

/** Dtypes of the format, in the reference implementation's order (used for its sort). */
export const SAFETENSORS_DTYPES = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
] as const;
export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

/** Dtypes that convert to and from float32/float64. The others pass through as raw bytes. */
export type FloatDTypeName = 'F16' | 'BF16' | 'F32' | 'F64';

const ITEM_SIZE: Record<SafetensorsDType, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** The reference implementation refuses headers above 100 MB. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of a dtype. */
export function itemSize(dtype: SafetensorsDType): number {
  return ITEM_SIZE[dtype];
}

/** True for a dtype name this module knows. */
export function isSafetensorsDType(s: string): s is SafetensorsDType {
  return Object.hasOwn(ITEM_SIZE, s);
}

/** True for F16, BF16, F32, F64. */
export function isFloatDType(d: SafetensorsDType): d is FloatDTypeName {
  return d === 'F16' || d === 'BF16' || d === 'F32' || d === 'F64';
}

/** One tensor's entry. `byteOffset` is absolute in the file; `begin`/`end` are the header's offsets. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** A parsed, validated header. `tensors` iterates in file (offset) order. */
export interface ParsedHeader {
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** Absolute offset of the data section: 8 + N. */
  readonly dataOffset: number;
  /** Bytes the tensors cover, from the data section's start. */
  readonly dataLength: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegativeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses and validates header bytes (the N bytes after the length prefix). `fileSize` is the
 * total file size; every check names `file` and, where there is one, the tensor.
 */
export function parseHeader(bytes: Uint8Array, fileSize: number, file: string): ParsedHeader {
  const dataOffset = 8 + bytes.length;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new FormatError('SAFETENSORS_INVALID_HEADER', 'header is not valid UTF-8', { file }, { cause });
  }
  if (!text.startsWith('{')) throw new FormatError('SAFETENSORS_INVALID_HEADER', `header must start with '{', found ${JSON.stringify(text.slice(0, 16))}`, { file });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new FormatError('SAFETENSORS_INVALID_HEADER', `header is not valid JSON (${(cause as Error).message})`, { file }, { cause });
  }
  if (!isRecord(json)) throw new FormatError('SAFETENSORS_INVALID_HEADER', 'header JSON is not an object', { file });

  const metadataEntries: [string, string][] = [];
  const entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(value)) throw new FormatError('SAFETENSORS_INVALID_HEADER', '__metadata__ must be an object of strings', { file });
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new FormatError('SAFETENSORS_INVALID_HEADER', `__metadata__ value of '${k}' must be a string, got ${typeof v}`, { file });
        metadataEntries.push([k, v]);
      }
      continue;
    }
    const ctx = { file, tensor: name };
    if (!isRecord(value)) throw new FormatError('SAFETENSORS_INVALID_HEADER', 'entry must be an object with dtype, shape and data_offsets', ctx);
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string') throw new FormatError('SAFETENSORS_INVALID_HEADER', 'entry has no string dtype', ctx);
    if (!isSafetensorsDType(dtype)) {
      throw new FormatError('SAFETENSORS_UNKNOWN_DTYPE', `unknown dtype '${dtype}' (known: ${SAFETENSORS_DTYPES.join(', ')})`, ctx);
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
      throw new FormatError('SAFETENSORS_INVALID_SHAPE', `shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`, ctx);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
      throw new FormatError('SAFETENSORS_INVALID_OFFSETS', `data_offsets must be two non-negative integers, got ${JSON.stringify(offsets)}`, ctx);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new FormatError('SAFETENSORS_INVALID_OFFSETS', `data_offsets [${begin}, ${end}] end before they begin`, ctx);
    const numel = shape.reduce((a: number, d: number) => a * d, 1);
    const expected = numel * ITEM_SIZE[dtype];
    if (!Number.isSafeInteger(expected)) throw new FormatError('SAFETENSORS_INVALID_SHAPE', `shape [${shape.join(', ')}] is too large`, ctx);
    if (end - begin !== expected) {
      throw new FormatError('SAFETENSORS_SIZE_MISMATCH', `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype}[${shape.join(', ')}] needs ${expected}`, ctx);
    }
    entries.push({ name, dtype, shape, begin, end });
  }

  // The tensors must tile the data section: sorted by offsets, each begins where the last ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataAvailable = fileSize - dataOffset;
  const tensors = new Map<string, TensorInfo>();
  let cursor = 0;
  let previous: string | undefined;
  for (const e of entries) {
    const ctx = { file, tensor: e.name };
    if (e.begin < cursor) {
      throw new FormatError('SAFETENSORS_OVERLAP', `data_offsets [${e.begin}, ${e.end}] overlap tensor '${previous}' (which ends at ${cursor})`, ctx);
    }
    if (e.begin > cursor) {
      throw new FormatError('SAFETENSORS_GAP', `data_offsets [${e.begin}, ${e.end}] leave a gap of ${e.begin - cursor} bytes after ${previous === undefined ? 'the header' : `tensor '${previous}'`}`, ctx);
    }
    if (e.end > dataAvailable) {
      throw new FormatError('SAFETENSORS_TRUNCATED', `data_offsets [${e.begin}, ${e.end}] run past the end of the file (data section has ${dataAvailable} bytes)`, ctx);
    }
    tensors.set(e.name, { name: e.name, dtype: e.dtype, shape: e.shape, byteOffset: dataOffset + e.begin, byteLength: e.end - e.begin });
    cursor = e.end;
    previous = e.name;
  }
  if (cursor !== dataAvailable) {
    throw new FormatError('SAFETENSORS_TRAILING_DATA', `tensors cover ${cursor} bytes of data but the file holds ${dataAvailable} after the header`, { file });
  }
  // fromEntries defines own properties, so a key like "__proto__" stays data.
  return { metadata: Object.fromEntries(metadataEntries), tensors, dataOffset, dataLength: cursor };
}

/** What the writer needs to know about one tensor. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
}

/** A planned file: header bytes (length prefix included) and where each tensor goes. */
export interface HeaderPlan {
  readonly headerBytes: Uint8Array;
  readonly tensors: readonly TensorInfo[];
  readonly fileSize: number;
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Orders tensors as the reference implementation does: dtype descending in its enum order (widest
 * alignment first), then name byte-wise.
 */
export function referenceOrder(specs: readonly TensorSpec[]): TensorSpec[] {
  const rank = (d: SafetensorsDType): number => SAFETENSORS_DTYPES.indexOf(d);
  return [...specs].sort((a, b) => rank(b.dtype) - rank(a.dtype) || compareUtf8(a.name, b.name));
}

/**
 * Lays out a file: contiguous offsets in the given order, the header JSON written the way the
 * reference implementation writes it (`__metadata__` first, compact, padded with spaces to a
 * multiple of 8 bytes).
 */
export function planHeader(specs: readonly TensorSpec[], metadata: Readonly<Record<string, string>> | undefined, file: string): HeaderPlan {
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new FormatError('SAFETENSORS_WRITE_INVALID', `metadata value of '${k}' must be a string, got ${typeof v}`, { file });
    }
    parts.push(`"__metadata__":{${Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  const seen = new Set<string>();
  const tensors: TensorInfo[] = [];
  let offset = 0;
  for (const spec of specs) {
    const ctx = { file, tensor: spec.name };
    if (spec.name === '__metadata__') throw new FormatError('SAFETENSORS_WRITE_INVALID', 'the name __metadata__ is reserved', ctx);
    if (seen.has(spec.name)) throw new FormatError('SAFETENSORS_WRITE_INVALID', 'tensor listed twice', ctx);
    seen.add(spec.name);
    if (!isSafetensorsDType(spec.dtype)) throw new FormatError('SAFETENSORS_UNKNOWN_DTYPE', `unknown dtype '${String(spec.dtype)}'`, ctx);
    if (!spec.shape.every((d) => isNonNegativeInteger(d))) throw new FormatError('SAFETENSORS_INVALID_SHAPE', `shape [${spec.shape.join(', ')}] has a negative or fractional dimension`, ctx);
    const byteLength = spec.shape.reduce((a, d) => a * d, 1) * ITEM_SIZE[spec.dtype];
    tensors.push({ name: spec.name, dtype: spec.dtype, shape: [...spec.shape], byteOffset: offset, byteLength });
    parts.push(`${JSON.stringify(spec.name)}:{"dtype":"${spec.dtype}","shape":[${spec.shape.join(',')}],"data_offsets":[${offset},${offset + byteLength}]}`);
    offset += byteLength;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const n = json.length + ((8 - (json.length % 8)) % 8);
  const headerBytes = new Uint8Array(8 + n).fill(0x20, 8 + json.length);
  new DataView(headerBytes.buffer).setBigUint64(0, BigInt(n), true);
  headerBytes.set(json, 8);
  const dataOffset = 8 + n;
  return {
    headerBytes,
    tensors: tensors.map((t) => ({ ...t, byteOffset: t.byteOffset + dataOffset })),
    fileSize: dataOffset + offset,
  };
}
