/**
 * The base model's identity and its transfer over model_request / model_chunk. The content hash
 * is computed from the file manifest, so a peer can check it before fetching a byte, and each file
 * is checked against its own SHA-256 once assembled. File names are advisory labels only:
 * receivers store files by (hash, index) and never build a path from a name a peer sent.
 */
import { createHash } from 'node:crypto';
import { protocolError } from './errors.js';
import type { ParamsOf } from './messages.js';

/**
 * Bytes a model_chunk frame adds to its chunk (prefix, JSON header, padding): a frame is at most
 * `length + MODEL_CHUNK_OVERHEAD_BYTES`, so a client asks for at most its own maxFrameBytes minus this.
 */
export const MODEL_CHUNK_OVERHEAD_BYTES = 512;

/** One file of the base model manifest (welcome.baseModel.files[]). */
export interface ModelFile {
  readonly name: string;
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * Content hash of a base model: SHA-256 (lower-case hex) of the UTF-8 text made of one line per
 * file, in manifest order: `<sha256 hex> <size in decimal> <name>\n`.
 */
export function baseModelHash(files: readonly ModelFile[]): string {
  const manifest = files.map((f) => `${f.sha256} ${f.bytes} ${f.name}\n`).join('');
  return createHash('sha256').update(manifest, 'utf8').digest('hex');
}

/** SHA-256 (lower-case hex) of some bytes: a file's `sha256` field. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Coordinator side: checks a model_request against the offered manifest; throws `E_MODEL_TRANSFER`. */
export function checkModelRequest(
  request: ParamsOf<'model_request'>,
  offer: { readonly hash: string; readonly files: readonly ModelFile[] } | undefined,
  maxChunkBytes: number,
): ModelFile {
  if (offer === undefined) throw protocolError('E_MODEL_TRANSFER', 'model_request: this coordinator does not offer the base model');
  if (request.hash !== offer.hash) throw protocolError('E_MODEL_TRANSFER', `model_request: hash ${request.hash} is not the offered base model ${offer.hash}`);
  const file = offer.files[request.file];
  if (file === undefined) throw protocolError('E_MODEL_TRANSFER', `model_request: file index ${request.file} is outside 0..${offer.files.length - 1}`);
  if (request.length > maxChunkBytes) throw protocolError('E_MODEL_TRANSFER', `model_request: length ${request.length} exceeds maxChunkBytes ${maxChunkBytes}`);
  if (request.offset + request.length > file.bytes) {
    throw protocolError('E_MODEL_TRANSFER', `model_request: bytes [${request.offset}, ${request.offset + request.length}) lie outside file ${request.file} of ${file.bytes} bytes`);
  }
  return file;
}
