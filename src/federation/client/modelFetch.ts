/**
 * Fetching the federation's base model from the coordinator (docs/protocol.md §8), for a client
 * that holds none: `hello` without a hash and with `modelTransfer`, `welcome` with the offer; then,
 * unless the cache already holds that hash, consecutive `model_request` ranges of each file (at most
 * 4 outstanding), each `model_chunk` checked against its request and appended to the partial
 * download; every file's SHA-256 and the manifest hash are checked, the model is moved into the
 * cache (modelCache.ts), and the client leaves — it rejoins with the hash as a normal client. A
 * dropped connection reconnects with backoff and resumes where the partial files end.
 */
import { encodeMessage, safeText, tryDecodeMessage } from '../protocol/codec.js';
import { DEFAULT_LIMITS, PROTOCOL_MAJOR, PROTOCOL_MINOR } from '../protocol/constants.js';
import { baseModelHash, MODEL_CHUNK_OVERHEAD_BYTES, type ModelFile } from '../protocol/baseModel.js';
import type { AnyOutgoingMessage, Message } from '../protocol/envelope.js';
import type { ParamsOf } from '../protocol/messages.js';
import { advanceSession, INITIAL_SESSION, type SessionState } from '../protocol/sessionState.js';
import { backoffDelay, sleep } from '../transport/backoff.js';
import { connectWithRetry, type RetryOptions } from '../transport/client.js';
import { TransportError, type ConnectOptions, type Connection } from '../transport/types.js';
import { ClientError, rejectionError } from './errors.js';
import { cacheFileName, type ModelCache, type ModelDownload } from './modelCache.js';
import { startHeartbeat } from './heartbeat.js';
import { clientCredential, helloCredential, respondToChallenge } from './credentials.js';
import type { ClientIdentity } from '../shared/identityFiles.js';
import type { ModelManifest } from '../shared/modelBase.js';

/** Options of `fetchBaseModel`. */
export interface ModelFetchOptions {
  readonly url: string;
  /** The shared join token, or the client's identity key (exactly one). */
  readonly token?: string;
  readonly identity?: ClientIdentity;
  readonly name: string;
  readonly clientId: string;
  readonly device?: string;
  readonly cache: ModelCache;
  /** Largest frame accepted (default 64 MiB); requests ask for at most this minus the chunk frame's overhead. */
  readonly maxFrameBytes?: number;
  readonly heartbeatMs?: number;
  /** Reconnect spacing; `maxAttempts` bounds consecutive failed attempts. */
  readonly reconnect?: Omit<RetryOptions, 'onRetry'>;
  readonly tls?: ConnectOptions['tls'];
  readonly signal?: AbortSignal;
  /** Requests kept outstanding, 1..4 (default 4, the most §8 allows). */
  readonly window?: number;
  readonly onProgress?: (progress: ModelFetchProgress) => void;
  readonly onRetry?: (attempt: number, delayMs: number, message: string) => void;
}

/** Where a fetch stands. */
export interface ModelFetchProgress {
  /** offered: the welcome named the model; cached: found in the cache; waiting: another process is downloading it; progress; verified: fetched and checked. */
  readonly status: 'offered' | 'cached' | 'waiting' | 'progress' | 'verified';
  readonly hash: string;
  readonly files: number;
  /** Bytes of the model on disk so far (resumed and fetched), of `totalBytes`. */
  readonly bytes: number;
  readonly totalBytes: number;
  /** model_request messages this process sent. */
  readonly requests: number;
}

/** The base model, in the cache. */
export interface FetchedModel {
  readonly manifest: ModelManifest;
  /** False when the cache already held it (no model_request was sent). */
  readonly downloaded: boolean;
  readonly bytesFetched: number;
  readonly requests: number;
}

type Outcome =
  | { readonly kind: 'done'; readonly result: FetchedModel }
  | { readonly kind: 'fatal'; readonly error: ClientError }
  | { readonly kind: 'retry'; readonly welcomed: boolean; readonly retryAfterMs?: number };

type Answer = { readonly chunk: Message<'model_chunk'> } | { readonly error: ParamsOf<'error'> };

const RETRYABLE = new Set(['E_FULL', 'E_SHUTDOWN', 'E_TIMEOUT', 'E_INTERNAL', 'E_THROTTLED']);
const POLL_MS = 250;
const PROGRESS_EVERY_MS = 250;

/** The connection ended under a running download (reconnect and resume). */
class Gone extends Error {}

/** What survives reconnects: the offer, the lock on the partial download, the counters. */
interface FetchJob {
  readonly o: ModelFetchOptions;
  hash?: string;
  files?: readonly ModelFile[];
  names?: readonly string[];
  download?: ModelDownload;
  requests: number;
  bytesFetched: number;
}

/**
 * Fetches the coordinator's base model into the cache (or finds it there) and returns its manifest.
 * Rejects `ClientError`: the coordinator's refusal (`E_BASE_MISMATCH` when it offers no model,
 * `E_AUTH`, …), `E_MODEL_TRANSFER` (a refused request, a chunk that does not answer its request, a
 * file whose SHA-256 or a manifest whose hash does not check out: nothing is kept), `C_CONNECT`, `C_ABORTED`.
 */
export async function fetchBaseModel(o: ModelFetchOptions): Promise<FetchedModel> {
  const job: FetchJob = { o, requests: 0, bytesFetched: 0 };
  let failed = 0;
  try {
    for (;;) {
      if (o.signal?.aborted) throw new ClientError('C_ABORTED', `client ${o.name}: aborted while fetching the base model`);
      if (failed > 0) await sleep(backoffDelay(failed - 1, o.reconnect), o.signal);
      const conn = await connectWithRetry(o.url, { maxFrameBytes: o.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes, heartbeatMs: o.heartbeatMs, tls: o.tls, signal: o.signal }, { ...o.reconnect,
        onRetry: (attempt, delayMs, error) => o.onRetry?.(attempt, delayMs, error.message) });
      const onAbort = (): void => conn.terminate();
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const outcome = await new FetchConnection(conn, job).run().finally(() => o.signal?.removeEventListener('abort', onAbort));
      if (outcome.kind === 'done') return outcome.result;
      if (outcome.kind === 'fatal') throw outcome.error;
      failed = outcome.welcomed ? 1 : failed + 1;
      if (o.reconnect?.maxAttempts !== undefined && failed >= o.reconnect.maxAttempts) {
        throw new ClientError('C_CONNECT', `client ${o.name}: lost ${o.url} ${failed} times while fetching the base model`);
      }
      if (outcome.retryAfterMs !== undefined) await sleep(outcome.retryAfterMs, o.signal);
    }
  } catch (err) {
    if (o.signal?.aborted) throw new ClientError('C_ABORTED', `client ${o.name}: aborted while fetching the base model`, { cause: err });
    if (err instanceof TransportError) throw new ClientError('C_CONNECT', `client ${o.name}: cannot reach ${o.url}: ${err.message}`, { cause: err });
    throw err;
  } finally {
    await job.download?.release();
  }
}

/** Checks the offer of a welcome and picks the stored file names; throws a fatal `ClientError`. */
function acceptOffer(job: FetchJob, w: ParamsOf<'welcome'>): { hash: string; files: readonly ModelFile[]; names: string[] } {
  const offer = w.baseModel;
  if (offer === undefined) {
    throw new ClientError('E_BASE_MISMATCH', `the coordinator does not offer its base model ${w.config.baseModelHash.slice(0, 12)}…, and this client has none`);
  }
  // The folder is named by the hash this client computes; the welcome's must agree with it.
  const hash = baseModelHash(offer.files);
  if (hash !== offer.hash || hash !== w.config.baseModelHash) {
    throw new ClientError('E_MODEL_TRANSFER', `the coordinator's manifest hashes to ${hash}, not to the base model ${w.config.baseModelHash} it announces`);
  }
  const names: string[] = [];
  for (const f of offer.files) {
    const name = cacheFileName(f.name);
    if (name === null || name !== f.name || names.includes(name)) {
      throw new ClientError('E_MODEL_TRANSFER',
        `the base model lists a file '${safeText(f.name, 128)}' this client does not store (config.json, model.safetensors, model-0000N-of-0000M.safetensors, model.safetensors.index.json, tokenizer.json, tokenizer_config.json, each once)`);
    }
    names.push(name);
  }
  if (job.hash !== undefined && job.hash !== hash) throw new ClientError('E_MODEL_TRANSFER', `the coordinator's base model changed from ${job.hash} to ${hash} during the download`);
  return { hash, files: offer.files, names };
}

/** One connection of a fetch. */
class FetchConnection {
  private state: SessionState = INITIAL_SESSION;
  private queue: Promise<void> = Promise.resolve();
  private work: Promise<void> = Promise.resolve();
  private ending: Outcome | undefined;
  private welcomed = false;
  private gone = false;
  private readonly answers: Answer[] = [];
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastSent = Date.now();
  private lastProgress = 0;
  /** The hello sent (signed in a challenge response). */
  private hello: ParamsOf<'hello'> | undefined;

  constructor(private readonly conn: Connection, private readonly job: FetchJob) {}

  async run(): Promise<Outcome> {
    const o = this.job.o;
    this.conn.on('frame', (bytes) => {
      this.queue = this.queue.then(() => this.handle(bytes)).catch((err: unknown) => this.finish(err));
    });
    this.send({
      method: 'hello',
      params: {
        protocolMajor: PROTOCOL_MAJOR,
        protocolMinor: PROTOCOL_MINOR,
        ...helloCredential(clientCredential(o)),
        clientName: safeText(o.name, 64) || 'client',
        clientId: o.clientId,
        device: o.device ?? 'cpu',
        capabilities: { uplinkDtypes: ['float32'], factoredResidual: true, modelTransfer: true, maxFrameBytes: o.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes },
      },
    });
    await this.conn.closed;
    this.gone = true;
    this.wake?.();
    await this.queue;
    await this.work;
    clearInterval(this.timer);
    return this.ending ?? { kind: 'retry', welcomed: this.welcomed };
  }

  private send(message: AnyOutgoingMessage): void {
    if (message.method === 'hello') this.hello = message.params;
    this.state = advanceSession(this.state, 'client', message);
    this.lastSent = Date.now();
    this.conn.send(encodeMessage(message)).catch(() => undefined);
  }

  /** Ends the connection: done, or a fatal error (told to the coordinator with `leave`); anything else retries. */
  private finish(err: unknown, result?: FetchedModel): void {
    if (err instanceof Gone) return;
    this.ending ??= result !== undefined ?
      { kind: 'done', result }
      : { kind: 'fatal', error: err instanceof ClientError ? err : new ClientError('E_INTERNAL', `client ${this.job.o.name}: ${(err as Error).message ?? String(err)}`, { cause: err }) };
    if (this.conn.isOpen && this.state.phase !== 'closed') {
      const reason = result !== undefined ? 'base model fetched' : `fetching the base model failed: ${(err as Error).message}`;
      try {
        this.send({ method: 'leave', params: { reason: safeText(reason, 256) } });
      } catch {
        // Closing anyway.
      }
    }
    this.conn.close(1000, result !== undefined ? 'base model fetched' : 'fetch failed');
  }

  private async handle(bytes: Uint8Array): Promise<void> {
    if (this.state.phase === 'closed') return;
    const decoded = tryDecodeMessage(bytes, { receiver: 'client', limits: { maxFrameBytes: this.job.o.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes } });
    if (!decoded.ok) throw new ClientError('E_MODEL_TRANSFER', `the coordinator sent an invalid frame (${decoded.error.code}): ${decoded.error.message}`);
    const message = decoded.message;
    this.state = advanceSession(this.state, 'coordinator', message);
    switch (message.method) {
      case 'welcome': {
        const offer = acceptOffer(this.job, message.params);
        this.welcomed = true;
        this.timer = startHeartbeat(message.params.limits.heartbeatMs, (ms) => this.idleFor(ms), (ping) => this.send(ping));
        const chunkBytes = Math.min(message.params.limits.maxChunkBytes, (this.job.o.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes) - MODEL_CHUNK_OVERHEAD_BYTES);
        this.work = this.download(offer, chunkBytes).then((result) => this.finish(null, result), (err: unknown) => this.finish(err));
        return;
      }
      case 'challenge': {
        this.send({ method: 'challenge_response', params: respondToChallenge(clientCredential(this.job.o), this.hello, message.params, this.job.o.url) });
        return;
      }
      case 'reject': {
        const p = message.params;
        this.ending = RETRYABLE.has(p.code)
          ? { kind: 'retry', welcomed: false, ...(p.retryAfterMs !== undefined ? { retryAfterMs: p.retryAfterMs } : {}) }
          : { kind: 'fatal', error: rejectionError(p.code, p.message, this.job.o.url) };
        return;
      }
      case 'model_chunk':
        this.answers.push({ chunk: message });
        this.wake?.();
        return;
      case 'error':
        if (message.params.code === 'E_MODEL_TRANSFER' && !message.params.fatal) {
          this.answers.push({ error: message.params });
          this.wake?.();
        } else if (message.params.fatal && (message.params.code === 'E_AUTH' || message.params.code === 'E_VERSION')) {
          this.ending ??= { kind: 'fatal', error: rejectionError(message.params.code, message.params.message, this.job.o.url) };
        }
        return;
      case 'ping':
        this.send({ method: 'pong', params: { nonce: message.params.nonce } });
        return;
      default:
        // A fetching client is never sampled (§8); anything else is not for it.
        return;
    }
  }

  /** Whether the socket is open and nothing was sent for `ms` (a heartbeat ping is due). */
  private idleFor(ms: number): boolean {
    return this.conn.isOpen && this.state.phase !== 'closed' && Date.now() - this.lastSent >= ms;
  }

  private progress(status: ModelFetchProgress['status'], bytes: number, force = true): void {
    const files = this.job.files ?? [];
    const now = Date.now();
    if (!force && now - this.lastProgress < PROGRESS_EVERY_MS) return;
    if (!force) this.lastProgress = now;
    this.job.o.onProgress?.({ status, hash: this.job.hash ?? '', files: files.length, bytes, totalBytes: files.reduce((n, f) => n + f.bytes, 0), requests: this.job.requests });
  }

  private async download(offer: { hash: string; files: readonly ModelFile[]; names: string[] }, chunkBytes: number): Promise<FetchedModel> {
    const job = this.job;
    Object.assign(job, offer);
    const total = offer.files.reduce((n, f) => n + f.bytes, 0);
    const cached = await job.o.cache.lookup(offer.hash);
    if (cached !== null) {
      this.progress('cached', total);
      return { manifest: cached, downloaded: false, bytesFetched: 0, requests: 0 };
    }
    this.progress('offered', 0);
    let waiting = false;
    while (job.download === undefined) {
      job.download = await job.o.cache.lock(offer.hash) ?? undefined;
      if (job.download !== undefined) break;
      if (!waiting) this.progress('waiting', 0);
      waiting = true;
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (this.gone) throw new Gone();
      const done = await job.o.cache.lookup(offer.hash);
      if (done !== null) return { manifest: done, downloaded: false, bytesFetched: 0, requests: 0 };
    }
    const have = await job.download.prepare(offer.files, offer.names);
    let bytes = have.reduce((n, b) => n + b, 0);
    for (const [i, f] of offer.files.entries()) {
      bytes = await this.fetchFile(i, f, have[i], chunkBytes, bytes);
    }
    const manifest = await job.download.commit(offer.files);
    this.progress('verified', total);
    return { manifest, downloaded: true, bytesFetched: job.bytesFetched, requests: job.requests };
  }

  /** Fetches bytes [from, f.bytes) of file `i`, `window` requests outstanding; returns the model bytes on disk. */
  private async fetchFile(i: number, f: ModelFile, from: number, chunkBytes: number, bytes: number): Promise<number> {
    const job = this.job;
    const window = Math.max(1, Math.min(4, job.o.window ?? 4));
    const outstanding: { offset: number; length: number }[] = [];
    let next = from;
    let done = from;
    while (done < f.bytes) {
      while (outstanding.length < window && next < f.bytes) {
        if (this.gone) throw new Gone();
        const length = Math.min(chunkBytes, f.bytes - next);
        this.send({ method: 'model_request', params: { hash: job.hash!, file: i, offset: next, length } });
        job.requests++;
        outstanding.push({ offset: next, length });
        next += length;
      }
      const answer = await this.nextAnswer();
      const want = outstanding.shift()!;
      const where = `bytes [${want.offset}, ${want.offset + want.length}) of base model file ${i} (${job.names![i]})`;
      if ('error' in answer) throw new ClientError('E_MODEL_TRANSFER', `the coordinator refused ${where}: ${answer.error.message}`);
      const c = answer.chunk;
      if (c.params.hash !== job.hash || c.params.file !== i || c.params.offset !== want.offset || c.blob?.length !== want.length) {
        throw new ClientError('E_MODEL_TRANSFER', `the coordinator answered the request for ${where} with ${c.blob?.length ?? 0} bytes at offset ${c.params.offset} of file ${c.params.file}`);
      }
      await job.download!.append(i, c.blob);
      done += want.length;
      bytes += want.length;
      job.bytesFetched += want.length;
      this.progress('progress', bytes, false);
    }
    return bytes;
  }

  private nextAnswer(): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        this.wake = undefined;
        const a = this.answers.shift();
        if (a !== undefined) resolve(a);
        else if (this.gone) reject(new Gone());
        else this.wake = check;
      };
      check();
    });
  }
}
