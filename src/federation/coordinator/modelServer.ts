/**
 * Serving the base model over `model_request` / `model_chunk` (docs/protocol.md §8). The offer is
 * the coordinator's own manifest of its model folder; a request names a file only by its index in
 * that manifest, so the path read is always `<offer.dir>/<a name from our manifest>` — nothing the
 * peer sends becomes a path. Each session's requests are answered strictly in order (one
 * `model_chunk` with exactly the requested bytes, or `error` E_MODEL_TRANSFER), one at a time, so a
 * client cannot make the coordinator hold more than one chunk per session in memory.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { AnyOutgoingMessage } from '../protocol/envelope.js';
import { isProtocolError, protocolError, type ProtocolError } from '../protocol/errors.js';
import { baseModelHash, checkModelRequest, MODEL_CHUNK_OVERHEAD_BYTES, type ModelFile } from '../protocol/baseModel.js';
import type { ParamsOf } from '../protocol/messages.js';
import { CoordinatorError } from './errors.js';
import type { CoordinatorEventMap } from './events.js';

/** What the coordinator offers: a model folder and its manifest (welcome.baseModel). */
export interface ModelOffer {
  /** Folder the files are read from. */
  readonly dir: string;
  /** Content hash of `files` (`baseModelHash`): the federation's base model hash. */
  readonly hash: string;
  /** The files, in hash order; `name` is a plain file name inside `dir`. */
  readonly files: readonly ModelFile[];
  /** Largest length a model_request may ask for (welcome.limits.maxChunkBytes); default 1 MiB. */
  readonly maxChunkBytes?: number;
}

/** welcome.limits.maxChunkBytes when the offer does not set it. */
export const DEFAULT_MAX_CHUNK_BYTES = 1 << 20;
/** Requests a session may have waiting; §8 lets a client keep 4 outstanding, more are refused. */
export const MAX_QUEUED_REQUESTS = 16;
/** Clients whose served byte ranges are remembered (a transfer resumed on a new connection still finishes). */
const MAX_TRACKED_CLIENTS = 256;
/** Served ranges kept per file; a client that fragments more than this never counts as finished. */
const MAX_RANGES_PER_FILE = 1024;
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** Throws `CONFIG_INVALID` unless the offer is the manifest of the federation's base model. */
export function checkOffer(offer: ModelOffer, federationHash: string): void {
  const fail = (message: string): never => {
    throw new CoordinatorError('CONFIG_INVALID', `coordinator config: modelOffer: ${message}`);
  };
  if (offer.files.length === 0 || offer.files.length > 1024) fail(`needs 1..1024 files, got ${offer.files.length}`);
  for (const f of offer.files) {
    if (!FILE_NAME.test(f.name) || f.name.length > 128) fail(`'${f.name}' is not a plain file name`);
    if (!Number.isSafeInteger(f.bytes) || f.bytes < 0) fail(`file ${f.name} has size ${f.bytes}`);
  }
  if (baseModelHash(offer.files) !== offer.hash) fail(`hash ${offer.hash} is not the content hash of its files`);
  if (offer.hash !== federationHash) fail(`offers base model ${offer.hash}, the federation uses ${federationHash}`);
  const chunk = offer.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunk) || chunk < 1 || chunk > 0x7fffffff) fail(`maxChunkBytes must be an integer in 1..2147483647, got ${chunk}`);
}

/** The side of a session the server talks to (a `CoordinatorSession`). */
export interface ModelPeer {
  readonly clientId: string | undefined;
  readonly name: string;
  readonly isOpen: boolean;
  /** The client's announced frame limit. */
  readonly peerMaxFrameBytes: number;
  send(message: AnyOutgoingMessage, rawBytes?: number): Promise<number>;
  /** Answers a bad request with a non-fatal `error` (counted like any protocol error). */
  refuse(error: ProtocolError): void;
}

type TransferEvent = CoordinatorEventMap['model_transfer'][0];

interface Transfer {
  queue: Promise<void>;
  queued: number;
  bytesServed: number;
  requests: number;
}

/** Reads exactly `length` bytes at `offset` (fewer when the file is shorter than that). */
async function readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await handle.read(out, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === length ? out : out.subarray(0, got);
  } finally {
    await handle.close();
  }
}

/** Adds [start, end) to sorted disjoint ranges, merging; false when there would be too many. */
function addRange(ranges: [number, number][], start: number, end: number): boolean {
  const kept: [number, number][] = [];
  let s = start;
  let e = end;
  for (const r of ranges) {
    if (r[1] < s || r[0] > e) kept.push(r);
    else {
      s = Math.min(s, r[0]);
      e = Math.max(e, r[1]);
    }
  }
  kept.push([s, e]);
  kept.sort((a, b) => a[0] - b[0]);
  if (kept.length > MAX_RANGES_PER_FILE) return false;
  ranges.splice(0, ranges.length, ...kept);
  return true;
}

/** Serves one offer to every session that asks. */
export class ModelServer {
  readonly maxChunkBytes: number;
  private readonly transfers = new Map<ModelPeer, Transfer>();
  /** Per client: the byte ranges of each file served so far (null once too fragmented to track). */
  private readonly served = new Map<string, ([number, number][] | null)[]>();

  constructor(readonly offer: ModelOffer, private readonly publish: (event: TransferEvent) => void) {
    this.maxChunkBytes = offer.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  }

  /** welcome.baseModel. */
  get manifest(): { hash: string; files: ModelFile[] } {
    return { hash: this.offer.hash, files: this.offer.files.map((f) => ({ name: f.name, bytes: f.bytes, sha256: f.sha256 })) };
  }

  /** Queues a request; it is answered after every earlier request of the same session. */
  request(peer: ModelPeer, params: ParamsOf<'model_request'>): void {
    let t = this.transfers.get(peer);
    if (t === undefined) {
      t = { queue: Promise.resolve(), queued: 0, bytesServed: 0, requests: 1 };
      this.transfers.set(peer, t);
      this.publish(this.event(peer, t, 'started'));
    } else {
      t.requests++;
    }
    if (t.queued >= MAX_QUEUED_REQUESTS) {
      // Answered in order like the others, so the client can still match answers to requests.
      const error = protocolError('E_MODEL_TRANSFER', `model_request: more than ${MAX_QUEUED_REQUESTS} requests outstanding; wait for the chunks`);
      t.queue = t.queue.then(() => peer.refuse(error));
      return;
    }
    const transfer = t;
    transfer.queued++;
    transfer.queue = transfer.queue
      .then(() => this.serve(peer, transfer, params))
      .catch((err: unknown) => {
        if (peer.isOpen) peer.refuse(protocolError('E_MODEL_TRANSFER', `model_request for file ${params.file}: ${(err as Error).message}`));
      })
      .finally(() => transfer.queued--);
  }

  /** A session ended: `finished` when the client has now received every byte of every file, else `aborted`. */
  closed(peer: ModelPeer): void {
    const t = this.transfers.get(peer);
    if (t === undefined) return;
    this.transfers.delete(peer);
    const id = peer.clientId;
    const complete = id !== undefined && this.complete(id);
    if (complete) this.served.delete(id);
    this.publish(this.event(peer, t, complete ? 'finished' : 'aborted'));
  }

  private event(peer: ModelPeer, t: Transfer, status: TransferEvent['status']): TransferEvent {
    return { clientId: peer.clientId ?? 'unknown', name: peer.name, status, bytesServed: t.bytesServed, requests: t.requests };
  }

  private async serve(peer: ModelPeer, t: Transfer, p: ParamsOf<'model_request'>): Promise<void> {
    if (!peer.isOpen) return;
    let file: ModelFile;
    try {
      file = checkModelRequest(p, this.offer, this.maxChunkBytes);
    } catch (err) {
      if (isProtocolError(err)) return peer.refuse(err);
      throw err;
    }
    if (p.length + MODEL_CHUNK_OVERHEAD_BYTES > peer.peerMaxFrameBytes) {
      return peer.refuse(
        protocolError('E_MODEL_TRANSFER', `model_request: a chunk of ${p.length} bytes does not fit the client's maxFrameBytes ${peer.peerMaxFrameBytes}; ask for at most ${peer.peerMaxFrameBytes - MODEL_CHUNK_OVERHEAD_BYTES}`),
      );
    }
    // The file is the one at this index of our own manifest: its name never came from the peer.
    const bytes = await readRange(join(this.offer.dir, file.name), p.offset, p.length);
    if (bytes.length !== p.length) {
      return peer.refuse(protocolError('E_MODEL_TRANSFER', `model_request: ${file.name} is shorter on disk than in the manifest (it changed since the coordinator started)`));
    }
    try {
      await peer.send({ method: 'model_chunk', params: { hash: this.offer.hash, file: p.file, offset: p.offset }, blob: bytes }, bytes.length);
    } catch {
      return; // The connection is closing: nothing was served.
    }
    t.bytesServed += bytes.length;
    if (peer.clientId !== undefined) this.markServed(peer.clientId, p.file, p.offset, p.offset + p.length);
  }

  private markServed(clientId: string, file: number, start: number, end: number): void {
    let files = this.served.get(clientId);
    if (files === undefined) {
      if (this.served.size >= MAX_TRACKED_CLIENTS) this.served.delete(this.served.keys().next().value!);
      files = this.offer.files.map(() => []);
      this.served.set(clientId, files);
    }
    const ranges = files[file];
    if (ranges !== null && !addRange(ranges, start, end)) files[file] = null;
  }

  private complete(clientId: string): boolean {
    const files = this.served.get(clientId);
    return this.offer.files.every((f, i) => {
      if (f.bytes === 0) return true;
      const ranges = files?.[i];
      return ranges !== undefined && ranges !== null && ranges.length === 1 && ranges[0][0] === 0 && ranges[0][1] === f.bytes;
    });
  }
}
