/**
 * The host side of the trainer worker: a LoraTrainer whose work runs in a worker_threads Worker, so
 * onnxruntime never blocks the caller's event loop. One request at a time (calls queue up).
 *
 * Cancellation: aborting a call's signal sets a shared flag the worker reads between micro-batches;
 * the call rejects with an AbortError as soon as the worker stops, or after `abortGraceMs` at the
 * latest. A worker that has not stopped by then is set aside and terminated once its current
 * onnxruntime run returns: terminating a worker inside onnxruntime-node's run makes the binding
 * throw into a torn-down environment, and std::terminate aborts the whole process. The next call
 * starts a fresh worker, with the data stream back at its start. Errors from the worker keep their
 * name, code and message.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { initAdaptedModules } from '../model/loraInit.js';
import { TrainerAbortError } from './errors.js';
import type { WireError, WorkerInit, WorkerReply, WorkerRequest } from './worker/protocol.js';
import type { AdapterTensors, EvalOptions, EvalResult, LoraTrainer, TrainerInfo, TrainerSetup, TrainHooks, TrainOutcome, TrainRun, TrainStart } from './types.js';

/** How the worker script is started. */
export interface WorkerEntry {
  readonly path: string;
  /** Load tsx in the worker first (TypeScript sources). */
  readonly tsx: boolean;
}

/**
 * The worker script next to this code: `trainerWorker.cjs` beside a CommonJS bundle (dist/), or
 * `worker/entry.ts` run through tsx when running from TypeScript sources.
 */
export function defaultWorkerEntry(): WorkerEntry {
  if (typeof __filename === 'string' && __filename.endsWith('.cjs')) {
    return { path: join(dirname(__filename), 'trainerWorker.cjs'), tsx: false };
  }
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return { path: join(dirname(here), 'worker', 'entry.ts'), tsx: true };
  return { path: join(dirname(here), 'worker', 'entry.js'), tsx: false };
}

/**
 * Starts the worker. For TypeScript sources, `execArgv: ['--import', 'tsx']` is not enough on
 * Node 20 (the loader hooks do not reach the worker's module loader), so a one-line bootstrap
 * imports tsx's loader in the worker before the entry.
 */
function startWorker(entry: WorkerEntry, workerData: WorkerInit): Worker {
  if (!entry.tsx) return new Worker(entry.path, { workerData });
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(pathToFileURL(entry.path).href)}); });`;
  return new Worker(code, { eval: true, workerData });
}

/** Options of {@link WorkerTrainer.start}. */
export interface WorkerTrainerOptions {
  /** Default: {@link defaultWorkerEntry}. */
  readonly entry?: WorkerEntry;
  /** How long an aborted call waits for the worker to stop before terminating it. Default 2000 ms. */
  readonly abortGraceMs?: number;
}

/** Rebuilds a worker's error on this side, keeping name, code and message. */
export function fromWireError(e: WireError): Error {
  if (e.name === 'AbortError') return new TrainerAbortError(e.message);
  const err = new Error(e.message) as Error & { code?: string };
  err.name = e.name;
  if (e.code !== undefined) err.code = e.code;
  if (e.stack !== undefined) err.stack = `${e.name}: ${e.message}\n    (in the trainer worker)\n${e.stack.split('\n').slice(1).join('\n')}`;
  return err;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  onProgress?: TrainHooks['onProgress'];
  /** The worker the request went to. */
  readonly live: Live;
}

interface Live {
  readonly worker: Worker;
  readonly flag: Int32Array;
  /** Ids of requests sent to this worker and not answered yet (a rejected caller does not stop the worker). */
  readonly sent: Set<number>;
  /** Set once the worker is retired: called when it has answered everything or is gone. */
  idle?: () => void;
}

/** See the module comment. */
export class WorkerTrainer implements LoraTrainer {
  private live: Live | null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  /** Retired workers, each settled once the worker is terminated. */
  private readonly retiring = new Set<Promise<void>>();

  private constructor(
    private readonly setup: TrainerSetup,
    private readonly options: WorkerTrainerOptions,
    live: Live,
    readonly info: TrainerInfo,
    private readonly savedInit: ReadonlyMap<string, Float32Array>,
  ) {
    this.live = live;
    this.listen(live);
  }

  get modules(): TrainerInfo['modules'] {
    return this.info.modules;
  }

  /** Starts a worker and waits until its trainer is built (rejects with the worker's error otherwise). */
  static async start(setup: TrainerSetup, options: WorkerTrainerOptions = {}): Promise<WorkerTrainer> {
    const { live, info, savedInit } = await WorkerTrainer.spawn(setup, options);
    return new WorkerTrainer(setup, options, live, info, savedInit);
  }

  private static spawn(setup: TrainerSetup, options: WorkerTrainerOptions): Promise<{ live: Live; info: TrainerInfo; savedInit: ReadonlyMap<string, Float32Array> }> {
    const entry = options.entry ?? defaultWorkerEntry();
    if (!existsSync(entry.path)) throw new Error(`trainer: the worker script ${entry.path} is missing (run 'npm run build' to bundle dist/trainerWorker.cjs)`);
    const abortFlag = new SharedArrayBuffer(4);
    const init: WorkerInit = { setup, abortFlag };
    const worker = startWorker(entry, init);
    const live: Live = { worker, flag: new Int32Array(abortFlag), sent: new Set() };
    return new Promise((resolve, reject) => {
      const fail = (err: Error): void => {
        cleanup();
        void worker.terminate();
        reject(err);
      };
      const onMessage = (m: WorkerReply): void => {
        if (m.type === 'ready') {
          cleanup();
          resolve({ live, info: m.info, savedInit: m.savedInit });
        } else if (m.type === 'init-error') {
          fail(fromWireError(m.error));
        }
      };
      const onError = (err: Error): void => fail(new Error(`trainer: the worker failed to start: ${err.message}`, { cause: err }));
      const onExit = (code: number): void => fail(new Error(`trainer: the worker exited (code ${code}) before it was ready`));
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  private listen(live: Live): void {
    live.worker.on('message', (m: WorkerReply) => {
      if (m.type === 'progress') {
        this.pending.get(m.id)?.onProgress?.(m.progress);
      } else if (m.type === 'result' || m.type === 'error') {
        live.sent.delete(m.id);
        const p = this.pending.get(m.id);
        if (p !== undefined) {
          this.pending.delete(m.id);
          if (m.type === 'result') p.resolve(m.value);
          else p.reject(fromWireError(m.error));
        }
        if (live.sent.size === 0) live.idle?.();
      }
    });
    const lost = (why: string): void => {
      if (this.live === live) this.live = null;
      for (const [id, p] of this.pending) {
        if (p.live !== live) continue;
        this.pending.delete(id);
        p.reject(new Error(`trainer: ${why}`));
      }
      live.sent.clear();
      live.idle?.();
    };
    live.worker.on('error', (err) => lost(`the worker crashed: ${err.message}`));
    live.worker.on('exit', (code) => lost(`the worker exited (code ${code})`));
  }

  /**
   * Stops using `live`: raises its abort flag (the current run stops at its next micro-batch) and
   * terminates it once it has answered every request sent to it, never inside a run (see the module
   * comment). Resolves when it is terminated.
   */
  private retire(live: Live): Promise<void> {
    if (this.live === live) this.live = null;
    Atomics.store(live.flag, 0, 1);
    const gone = new Promise<void>((resolve) => {
      live.idle = (): void => {
        live.idle = undefined;
        live.worker.terminate().then(() => resolve(), () => resolve());
      };
    });
    this.retiring.add(gone);
    void gone.then(() => this.retiring.delete(gone));
    if (live.sent.size === 0) live.idle?.();
    return gone;
  }

  private async ensureLive(): Promise<Live> {
    if (this.disposed) throw new Error('trainer: used after dispose()');
    if (this.live === null) {
      const { live } = await WorkerTrainer.spawn(this.setup, this.options);
      this.live = live;
      this.listen(live);
    }
    return this.live;
  }

  /** Sends one request after the previous one finished; aborts through the shared flag. */
  private request<T>(make: (id: number) => WorkerRequest, signal: AbortSignal | undefined, onProgress?: TrainHooks['onProgress']): Promise<T> {
    const run = async (): Promise<T> => {
      if (signal?.aborted === true) throw new TrainerAbortError('the request was aborted before it started');
      const live = await this.ensureLive();
      Atomics.store(live.flag, 0, 0);
      const id = this.nextId++;
      const done = new Promise<T>((resolve, reject) => {
        this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, live, ...(onProgress !== undefined ? { onProgress } : {}) });
      });
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        Atomics.store(live.flag, 0, 1);
        timer = setTimeout(() => {
          const p = this.pending.get(id);
          if (p === undefined) return;
          this.pending.delete(id);
          p.reject(new TrainerAbortError(`the request was aborted; the worker did not stop within ${this.options.abortGraceMs ?? 2000} ms and is ended after its current step (the next call starts a fresh one)`));
          void this.retire(live);
        }, this.options.abortGraceMs ?? 2000);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        live.sent.add(id);
        live.worker.postMessage(make(id));
        return await done;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        if (timer !== undefined) clearTimeout(timer);
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  initialAdapter(seed: number): AdapterTensors {
    const modules = initAdaptedModules(this.modules, this.setup.lora, seed);
    return { modules, saved: new Map([...this.savedInit].map(([k, v]) => [k, v.slice()])) };
  }

  train(start: TrainStart, run: TrainRun, hooks: TrainHooks = {}): Promise<TrainOutcome> {
    return this.request<TrainOutcome>((id) => ({ type: 'train', id, start, run }), hooks.signal, hooks.onProgress);
  }

  evaluate(state: TrainStart, options: EvalOptions = {}): Promise<EvalResult> {
    const { signal, ...rest } = options;
    return this.request<EvalResult>((id) => ({ type: 'evaluate', id, state, options: rest }), signal);
  }

  /**
   * Disposes the worker's trainer and ends the worker. A request still running after 5 s is
   * aborted, and the worker ends once it has stopped; also waits for workers set aside by aborts.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    const live = this.live;
    if (live !== null) {
      try {
        await Promise.race([
          this.request<null>((id) => ({ type: 'dispose', id }), undefined),
          new Promise((resolve) => setTimeout(resolve, 5000).unref()),
        ]);
      } catch {
        // The worker is ended below either way.
      }
    }
    this.disposed = true;
    this.live = null;
    if (live !== null) await this.retire(live);
    await Promise.all([...this.retiring]);
  }
}
