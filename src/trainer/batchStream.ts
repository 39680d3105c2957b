/**
 * An endless, deterministic stream of training micro-batches over epochs: epoch e is shuffled by
 * a permutation seeded from (seed, e) (batching.ts), and the stream continues where the previous
 * run stopped, so successive federated rounds see fresh batches instead of the first ones again.
 */
import { epochBatches } from './data/batching.js';
import type { Batch } from './data/batching.js';
import type { EncodedExample } from './data/encode.js';

/** Options of {@link BatchStream}. */
export interface BatchStreamOptions {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly padId: number;
  readonly eosId?: number;
  readonly seed: number;
  /** Default 'pad' (rows padded to the longest example of each batch). */
  readonly mode?: 'pad' | 'pack';
}

/** A micro-batch and the 0-based epoch it belongs to. */
export interface StreamedBatch {
  readonly batch: Batch;
  readonly epoch: number;
}

/** See the module comment. */
export class BatchStream {
  private epoch = 0;
  private current: Generator<Batch> | null = null;
  /** Micro-batches per epoch (independent of the shuffle). */
  readonly batchesPerEpoch: number;

  constructor(private readonly examples: readonly EncodedExample[], private readonly options: BatchStreamOptions) {
    if (examples.length === 0) throw new Error('BatchStream: no training examples');
    const { batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError(`BatchStream: batchSize must be a positive integer, got ${batchSize}`);
    if ((options.mode ?? 'pad') === 'pack') {
      if (options.eosId === undefined) throw new Error('BatchStream: packing needs an eos token');
      // Packed length does not depend on the order: every example plus an eos unless it ends with one.
      const tokens = examples.reduce((s, e) => s + e.inputIds.length + (e.inputIds[e.inputIds.length - 1] === options.eosId ? 0 : 1), 0);
      this.batchesPerEpoch = Math.ceil(Math.ceil(tokens / options.seqLen) / batchSize);
    } else {
      this.batchesPerEpoch = Math.ceil(examples.length / batchSize);
    }
  }

  /** The next micro-batch (starting the next epoch when one ends). */
  next(): StreamedBatch {
    for (;;) {
      this.current ??= epochBatches(this.examples, {
        batchSize: this.options.batchSize,
        seqLen: this.options.seqLen,
        padId: this.options.padId,
        ...(this.options.eosId !== undefined ? { eosId: this.options.eosId } : {}),
        seed: this.options.seed,
        epoch: this.epoch,
        mode: this.options.mode ?? 'pad',
        padTo: 'longest',
      });
      const r = this.current.next();
      if (r.done !== true) return { batch: r.value, epoch: this.epoch };
      this.current = null;
      this.epoch++;
    }
  }
}
