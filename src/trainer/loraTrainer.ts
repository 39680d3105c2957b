/**
 * The trainer's entry point: `createTrainer(setup)` builds a LoraTrainer for one model folder and
 * one dataset, in a worker thread (default: onnxruntime's run blocks the thread it runs on) or on
 * the calling thread (`{ worker: false }`: scripts and tests). Types: ./types.ts.
 */
import { availableDevices, DeviceUnavailableError, executionProviders } from '../runtime/session.js';
import { InProcessTrainer } from './inProcessTrainer.js';
import { openModelSource } from './modelFolder.js';
import { checkSetup } from './setup.js';
import type { LoraTrainer, TrainerSetup } from './types.js';
import { WorkerTrainer } from './workerTrainer.js';
import type { WorkerEntry } from './workerTrainer.js';

/** Options of {@link createTrainer}. */
export interface CreateTrainerOptions {
  /** Run in a worker_threads Worker (default true). */
  readonly worker?: boolean;
  /** The worker script (default: dist/trainerWorker.cjs beside a bundle, or the .ts entry through tsx). */
  readonly workerEntry?: WorkerEntry;
  /** How long an aborted call waits for the worker to stop before terminating it (default 2000 ms). */
  readonly abortGraceMs?: number;
}

/**
 * Checks that this installation can run `device` (throws DeviceUnavailableError listing the
 * devices it can run), before any model is loaded: a GPU request never falls back to the CPU.
 */
export function checkDevice(device: TrainerSetup['device']): void {
  executionProviders(device);
  if (!availableDevices().includes(device)) throw new DeviceUnavailableError(device, 'not available in this installation');
}

/** Builds a LoraTrainer (see the module comment); rejects with the model, data or device error. */
export async function createTrainer(setup: TrainerSetup, options: CreateTrainerOptions = {}): Promise<LoraTrainer> {
  checkSetup(setup);
  checkDevice(setup.device);
  if (options.worker === false) {
    const source = await openModelSource(setup.modelDir);
    try {
      return await InProcessTrainer.create(setup, source);
    } catch (err) {
      await source.close();
      throw err;
    }
  }
  return WorkerTrainer.start(setup, {
    ...(options.workerEntry !== undefined ? { entry: options.workerEntry } : {}),
    ...(options.abortGraceMs !== undefined ? { abortGraceMs: options.abortGraceMs } : {}),
  });
}
