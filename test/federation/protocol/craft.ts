// Builds frames by hand (possibly wrong ones) for the validation and fuzz tests.
import { PREFIX_BYTES } from '../../../src/federation/protocol/constants.js';
import { encodeFloatTensor, type FloatWireDType } from '../../../src/federation/protocol/dtypes.js';
import type { NamedTensor } from '../../../src/federation/protocol/envelope.js';
import { encodeFrame } from '../../../src/federation/protocol/frame.js';

export interface CraftOptions {
  magic?: readonly number[];
  version?: number;
  flags?: number;
  /** Raw header text instead of JSON.stringify(header). */
  headerText?: string;
  /** Overrides the header length field (after padding was computed). */
  headerLength?: number;
  /** Skip the space padding that aligns the data section. */
  noPad?: boolean;
}

/** prefix + header + data, with the same layout rules as encodeFrame unless options say otherwise. */
export function craftFrame(header: unknown, data: Uint8Array = new Uint8Array(0), options: CraftOptions = {}): Uint8Array {
  let text = options.headerText ?? JSON.stringify(header);
  if (!options.noPad) { while ((PREFIX_BYTES + Buffer.byteLength(text)) % 8 !== 0) text += ' '; }
  const json = new TextEncoder().encode(text);
  const frame = new Uint8Array(PREFIX_BYTES + json.length + data.length);
  frame.set(options.magic ?? [0x46, 0x45, 0x44, 0x58], 0);
  const view = new DataView(frame.buffer);
  view.setUint16(4, options.version ?? 1, true);
  view.setUint16(6, options.flags ?? 0, true);
  view.setUint32(8, options.headerLength ?? json.length, true);
  frame.set(json, PREFIX_BYTES);
  frame.set(data, PREFIX_BYTES + json.length);
  return frame;
}

/** The header object of an encoded frame (for tweaking and re-crafting). */
export function headerOf(frame: Uint8Array): { method: string; params: Record<string, unknown>; tensors: Record<string, unknown>[] } {
  const length = new DataView(frame.buffer, frame.byteOffset).getUint32(8, true);
  return JSON.parse(new TextDecoder().decode(frame.subarray(PREFIX_BYTES, PREFIX_BYTES + length)));
}

/** The data section of an encoded frame (a copy). */
export function dataOf(frame: Uint8Array): Uint8Array {
  const length = new DataView(frame.buffer, frame.byteOffset).getUint32(8, true);
  return frame.slice(PREFIX_BYTES + length);
}

/** Encodes a message with no sender-side checks (encodeMessage would refuse a bad tensor set). */
export function rawEncode(message: { method: string; params: unknown; tensors?: readonly NamedTensor[] }, dtype: FloatWireDType = 'float32'): Uint8Array {
  const inputs = (message.tensors ?? []).map((t) => ({ name: t.name, dtype, shape: t.shape, bytes: encodeFloatTensor(t.data, dtype) }));
  return encodeFrame(message.method, message.params, inputs);
}
