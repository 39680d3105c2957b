/**
 * Fixed numbers of the wire format (docs/protocol.md §Frame layout and §Limits). Changing any of
 * them is a protocol change; the doc test compares them with the document.
 */

/** The first four bytes of every frame: ASCII "FEDX". */
export const MAGIC = new Uint8Array([0x46, 0x45, 0x44, 0x58]);

/** Major version: in every frame's prefix and in `hello`; peers of different majors cannot talk. */
export const PROTOCOL_MAJOR = 1;

/** Minor version: backward-compatible additions; negotiated as min(client, coordinator) in the handshake. */
export const PROTOCOL_MINOR = 3;

/** Bytes before the JSON header: magic (4), major (u16), flags (u16), header length (u32). */
export const PREFIX_BYTES = 12;

/** Alignment of the data section and of every tensor offset inside it. */
export const TENSOR_ALIGN = 8;

/** Most dimensions a tensor may have, and the largest single dimension. */
export const MAX_DIMS = 8;
export const MAX_DIM = 0x7fffffff;

/** Receiver limits; every one is configurable per endpoint. */
export interface FrameLimits {
  /** Largest frame accepted, checked before anything else is read. */
  readonly maxFrameBytes: number;
  /** Largest JSON header (its byte length field), checked before it is decoded. */
  readonly maxHeaderBytes: number;
  /** Most entries in a tensor table. */
  readonly maxTensors: number;
}

export const DEFAULT_LIMITS: FrameLimits = {
  maxFrameBytes: 64 * 1024 * 1024,
  maxHeaderBytes: 1024 * 1024,
  maxTensors: 65_536,
};
