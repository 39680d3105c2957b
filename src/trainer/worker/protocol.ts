/**
 * Messages between the trainer host (WorkerTrainer) and its worker thread. Requests carry an id;
 * the worker answers each with `result` or `error`, and sends `progress` events while training.
 * Cancellation does not go through messages (the worker's event loop is busy inside onnxruntime):
 * the host sets a shared Int32 flag that the worker reads between micro-batches.
 */
import type { AdapterTensors, EvalOptions, EvalResult, TrainerInfo, TrainerSetup, TrainOutcome, TrainProgress, TrainRun, TrainStart } from '../types.js';

/** Data the worker starts with (`workerData`). */
export interface WorkerInit {
  readonly setup: TrainerSetup;
  /** Int32Array(1) over a SharedArrayBuffer: non-zero = abort the current request. */
  readonly abortFlag: SharedArrayBuffer;
}

/** Host → worker. */
export type WorkerRequest =
  | { readonly type: 'train'; readonly id: number; readonly start: TrainStart; readonly run: TrainRun }
  | { readonly type: 'evaluate'; readonly id: number; readonly state: TrainStart; readonly options: Omit<EvalOptions, 'signal'> }
  | { readonly type: 'dispose'; readonly id: number };

/** An error as it crosses the thread boundary. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly stack?: string;
}

/** Worker → host. */
export type WorkerReply =
  | { readonly type: 'ready'; readonly info: TrainerInfo; readonly savedInit: ReadonlyMap<string, Float32Array> }
  | { readonly type: 'init-error'; readonly error: WireError }
  | { readonly type: 'progress'; readonly id: number; readonly progress: TrainProgress }
  | { readonly type: 'result'; readonly id: number; readonly value: TrainOutcome | EvalResult | null }
  | { readonly type: 'error'; readonly id: number; readonly error: WireError };

/** An Error as plain data. */
export function toWireError(err: unknown): WireError {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}), ...(err.stack !== undefined ? { stack: err.stack } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

/** The typed arrays of an adapter, to transfer instead of copying. */
export function adapterBuffers(adapter: AdapterTensors): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const f of adapter.modules.values()) {
    for (const data of [f.a.data, f.b.data, ...(f.r !== undefined ? [f.r.data] : [])]) if (data.buffer instanceof ArrayBuffer) out.add(data.buffer);
  }
  for (const data of adapter.saved?.values() ?? []) if (data.buffer instanceof ArrayBuffer) out.add(data.buffer);
  return [...out];
}
