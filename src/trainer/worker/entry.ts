/**
 * The trainer worker (worker_threads): builds an InProcessTrainer from `workerData.setup` and serves
 * the host's train / evaluate / dispose requests one at a time, posting progress events. Bundled
 * as dist/trainerWorker.cjs; run from sources with `--import tsx`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort, TransferListItem } from 'node:worker_threads';
import { InProcessTrainer } from '../inProcessTrainer.js';
import { openModelSource } from '../modelFolder.js';
import { adapterBuffers, toWireError } from './protocol.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';
import type { AbortLike } from '../errors.js';
import type { TrainOutcome } from '../types.js';

function post(port: MessagePort, reply: WorkerReply, transfer: TransferListItem[] = []): void {
  try {
    port.postMessage(reply, transfer);
  } catch {
    // A buffer that cannot be transferred (owned by onnxruntime) is copied instead.
    port.postMessage(reply);
  }
}

/** An abort signal over the host's shared flag (read between micro-batches). */
function flagSignal(flag: Int32Array): AbortLike {
  return {
    get aborted(): boolean {
      return Atomics.load(flag, 0) !== 0;
    },
    reason: undefined,
  };
}

async function serve(port: MessagePort, init: WorkerInit): Promise<void> {
  const flag = new Int32Array(init.abortFlag);
  const signal = flagSignal(flag);
  let trainer: InProcessTrainer;
  try {
    const source = await openModelSource(init.setup.modelDir);
    try {
      trainer = await InProcessTrainer.create(init.setup, source);
    } catch (err) {
      await source.close();
      throw err;
    }
  } catch (err) {
    post(port, { type: 'init-error', error: toWireError(err) });
    return;
  }
  const savedInit = new Map(trainer.initialAdapter(0).saved ?? []);
  post(port, { type: 'ready', info: trainer.info, savedInit });

  // Requests are served in order; the host sends one at a time.
  let queue = Promise.resolve();
  port.on('message', (request: WorkerRequest) => {
    queue = queue.then(async () => {
      try {
        if (request.type === 'train') {
          const outcome: TrainOutcome = await trainer.train(request.start, request.run, {
            signal,
            onProgress: (progress) => post(port, { type: 'progress', id: request.id, progress }),
          });
          post(port, { type: 'result', id: request.id, value: outcome }, adapterBuffers(outcome.adapter));
        } else if (request.type === 'evaluate') {
          const result = await trainer.evaluate(request.state, { ...request.options, signal });
          post(port, { type: 'result', id: request.id, value: result });
        } else {
          await trainer.dispose();
          post(port, { type: 'result', id: request.id, value: null });
          port.close();
        }
      } catch (err) {
        post(port, { type: 'error', id: request.id, error: toWireError(err) });
      }
    });
  });
}

if (parentPort !== null) void serve(parentPort, workerData as WorkerInit);
