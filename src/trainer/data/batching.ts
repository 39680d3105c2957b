/**
 * Batches as flat typed arrays, ready to feed an ONNX session: `inputIds` and `labels` as
 * BigInt64Array (int64), `attentionMask` as Float32Array, all row-major [batch, seq].
 *
 * Two layouts:
 * - padding: one example per row, padded on the RIGHT with `padId`, mask 0 and label -100 on pads;
 * - packing: examples (each ending with eos) concatenated into one stream and cut into full rows of
 *   seqLen, mask 1 everywhere (attention crosses example boundaries, as in HF's `group_texts`); the
 *   last, partial row is padded like above.
 *
 * Labels stay aligned with inputIds; the loss shifts (see encode.ts). Classification batches carry
 * one label per row: `labels` is [batch].
 *
 * Epochs are shuffled by a permutation seeded from (seed, epoch), so a run is reproducible and can
 * resume at any epoch. For gradient accumulation the trainer splits batches into micro-batches
 * ({@link splitBatch}) and weights each micro-batch's loss by its share of the step's `lossTokens`
 * (not by the number of micro-batches), so that accumulation gives the same gradient as one large batch.
 */
import type { EncodedExample } from './encode.js';
import { IGNORE_INDEX } from './records.js';
import { deriveSeed, permutation } from './sampling.js';

/** One (micro-)batch. */
export interface Batch {
  /** [batchSize, seqLen] of inputIds and attentionMask. */
  readonly shape: readonly [number, number];
  readonly inputIds: BigInt64Array;
  readonly attentionMask: Float32Array;
  /** [batchSize, seqLen] for language modelling, [batchSize] for classification. */
  readonly labels: BigInt64Array;
  readonly labelShape: readonly number[];
  /** Labels the shifted loss scores: non-ignored labels at positions ≥ 1 (or batchSize for classification). */
  readonly lossTokens: number;
}

/** Options of {@link padBatch}. */
export interface PadOptions {
  readonly seqLen: number;
  readonly padId: number;
  /** 'max': every row seqLen long (fixed shapes). 'longest': rows as long as the longest example. Default 'max'. */
  readonly padTo?: 'max' | 'longest';
}

/** Stacks examples into a right-padded batch (see the module comment). */
export function padBatch(examples: readonly EncodedExample[], options: PadOptions): Batch {
  if (examples.length === 0) throw new RangeError('padBatch: no examples');
  const longest = Math.max(...examples.map((e) => e.inputIds.length));
  if (longest > options.seqLen) throw new RangeError(`padBatch: an example has ${longest} tokens, more than seqLen ${options.seqLen} (encode with the same seqLen)`);
  const classification = examples[0].classLabel >= 0;
  if (examples.some((e) => e.classLabel >= 0 !== classification)) throw new Error('padBatch: a batch mixes classification and language-modelling examples');
  const T = (options.padTo ?? 'max') === 'max' ? options.seqLen : longest;
  const B = examples.length;
  const inputIds = new BigInt64Array(B * T).fill(BigInt(options.padId));
  const attentionMask = new Float32Array(B * T);
  const labels = classification ? new BigInt64Array(B) : new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
  let lossTokens = 0;
  examples.forEach((e, b) => {
    for (let t = 0; t < e.inputIds.length; t++) {
      inputIds[b * T + t] = BigInt(e.inputIds[t]);
      attentionMask[b * T + t] = 1;
      if (!classification) {
        labels[b * T + t] = BigInt(e.labels[t]);
        if (t > 0 && e.labels[t] !== IGNORE_INDEX) lossTokens++;
      }
    }
    if (classification) labels[b] = BigInt(e.classLabel);
  });
  if (classification) lossTokens = B;
  return { shape: [B, T], inputIds, attentionMask, labels, labelShape: classification ? [B] : [B, T], lossTokens };
}

/** Options of {@link packExamples}. */
export interface PackOptions {
  readonly seqLen: number;
  readonly padId: number;
  /** Appended to every example that does not already end with it; labelled eos when the example's last label is scored, else -100. */
  readonly eosId: number;
  /** Drop the last, partial row instead of padding it. Default false. */
  readonly dropLast?: boolean;
}

/** One packed row of seqLen tokens. */
export interface PackedRow {
  readonly inputIds: Int32Array;
  readonly labels: Int32Array;
  /** 1 on tokens, 0 on the padding of a last partial row. */
  readonly attentionMask: Float32Array;
}

/** Concatenates language-modelling examples, in the given order, into rows of exactly seqLen tokens. */
export function packExamples(examples: readonly EncodedExample[], options: PackOptions): PackedRow[] {
  const { seqLen, padId, eosId } = options;
  if (examples.some((e) => e.classLabel >= 0)) throw new Error('packExamples: classification examples cannot be packed; use padding');
  const ids: number[] = [];
  const labels: number[] = [];
  for (const e of examples) {
    for (let t = 0; t < e.inputIds.length; t++) {
      ids.push(e.inputIds[t]);
      labels.push(e.labels[t]);
    }
    if (e.inputIds[e.inputIds.length - 1] !== eosId) {
      // The separator is scored only when the example's last token is (not after a chat's unscored "\n").
      ids.push(eosId);
      labels.push(e.labels[e.labels.length - 1] === IGNORE_INDEX ? IGNORE_INDEX : eosId);
    }
  }
  const rows: PackedRow[] = [];
  for (let start = 0; start < ids.length; start += seqLen) {
    const n = Math.min(seqLen, ids.length - start);
    if (n < seqLen && options.dropLast === true) break;
    const row = { inputIds: new Int32Array(seqLen).fill(padId), labels: new Int32Array(seqLen).fill(IGNORE_INDEX), attentionMask: new Float32Array(seqLen) };
    for (let t = 0; t < n; t++) {
      row.inputIds[t] = ids[start + t];
      row.labels[t] = labels[start + t];
      row.attentionMask[t] = 1;
    }
    rows.push(row);
  }
  return rows;
}

/** Options of {@link epochBatches}. */
export interface EpochOptions {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly padId: number;
  /** Needed for 'pack'. */
  readonly eosId?: number;
  readonly seed: number;
  /** 0-based epoch number; each epoch gets its own permutation. */
  readonly epoch: number;
  /** Default 'pad'. */
  readonly mode?: 'pad' | 'pack';
  /** Default true; false keeps the data order (evaluation). */
  readonly shuffle?: boolean;
  /** Drop a last batch smaller than batchSize. Default false. */
  readonly dropLast?: boolean;
  /** Padding mode only. Default 'max'. */
  readonly padTo?: 'max' | 'longest';
}

/** The batches of one epoch, in order. Deterministic given (data, options). */
export function* epochBatches(examples: readonly EncodedExample[], options: EpochOptions): Generator<Batch> {
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError(`epochBatches: batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(options.epoch) || options.epoch < 0) throw new RangeError(`epochBatches: epoch must be a non-negative integer, got ${options.epoch}`);
  const order = options.shuffle === false ? examples.map((_, i) => i) : permutation(examples.length, deriveSeed(options.seed, 'epoch', options.epoch));
  const ordered = order.map((i) => examples[i]);
  if ((options.mode ?? 'pad') === 'pad') {
    for (let start = 0; start < ordered.length; start += batchSize) {
      const chunk = ordered.slice(start, start + batchSize);
      if (chunk.length < batchSize && options.dropLast === true) break;
      yield padBatch(chunk, { seqLen: options.seqLen, padId: options.padId, padTo: options.padTo });
    }
    return;
  }
  if (options.eosId === undefined) throw new Error('epochBatches: packing needs eosId');
  const rows = packExamples(ordered, { seqLen: options.seqLen, padId: options.padId, eosId: options.eosId });
  for (let start = 0; start < rows.length; start += batchSize) {
    const chunk = rows.slice(start, start + batchSize);
    if (chunk.length < batchSize && options.dropLast === true) break;
    yield stackRows(chunk, options.seqLen);
  }
}

/**
 * Splits a batch into micro-batches of `rows` rows (the last may have fewer), each keeping the
 * batch's width and counting its own loss tokens as padBatch does, so the micro-batches together
 * score exactly the batch's tokens.
 */
export function splitBatch(batch: Batch, rows: number): Batch[] {
  if (!Number.isInteger(rows) || rows <= 0) throw new RangeError(`splitBatch: rows must be a positive integer, got ${rows}`);
  const [B, T] = batch.shape;
  if (rows >= B) return [batch];
  const classification = batch.labelShape.length === 1;
  const ignore = BigInt(IGNORE_INDEX);
  const out: Batch[] = [];
  for (let start = 0; start < B; start += rows) {
    const n = Math.min(rows, B - start);
    const labels = classification ? batch.labels.slice(start, start + n) : batch.labels.slice(start * T, (start + n) * T);
    let lossTokens = n;
    if (!classification) {
      lossTokens = 0;
      for (let i = 0; i < labels.length; i++) if (i % T > 0 && labels[i] !== ignore) lossTokens++;
    }
    out.push({
      shape: [n, T],
      inputIds: batch.inputIds.slice(start * T, (start + n) * T),
      attentionMask: batch.attentionMask.slice(start * T, (start + n) * T),
      labels,
      labelShape: classification ? [n] : [n, T],
      lossTokens,
    });
  }
  return out;
}

/**
 * The batch padded to exactly `rows` × `seq` (sessions compiled for fixed shapes): new tokens and
 * rows hold id `padId`, mask 0 and label -100 (a padded row's class label too), so they score
 * nothing; the loss tokens are the batch's.
 */
export function padBatchTo(batch: Batch, rows: number, seq: number, padId: number): Batch {
  const [B, T] = batch.shape;
  if (B > rows || T > seq) throw new RangeError(`padBatchTo: a batch of ${B} × ${T} does not fit ${rows} × ${seq}`);
  if (B === rows && T === seq) return batch;
  const classification = batch.labelShape.length === 1;
  const inputIds = new BigInt64Array(rows * seq).fill(BigInt(padId));
  const attentionMask = new Float32Array(rows * seq);
  const labels = new BigInt64Array(classification ? rows : rows * seq).fill(BigInt(IGNORE_INDEX));
  for (let b = 0; b < B; b++) {
    inputIds.set(batch.inputIds.subarray(b * T, (b + 1) * T), b * seq);
    attentionMask.set(batch.attentionMask.subarray(b * T, (b + 1) * T), b * seq);
    if (!classification) labels.set(batch.labels.subarray(b * T, (b + 1) * T), b * seq);
  }
  if (classification) labels.set(batch.labels);
  return { shape: [rows, seq], inputIds, attentionMask, labels, labelShape: classification ? [rows] : [rows, seq], lossTokens: batch.lossTokens };
}

function stackRows(rows: readonly PackedRow[], T: number): Batch {
  const B = rows.length;
  const inputIds = new BigInt64Array(B * T);
  const labels = new BigInt64Array(B * T);
  const attentionMask = new Float32Array(B * T);
  let lossTokens = 0;
  rows.forEach((row, b) => {
    for (let t = 0; t < T; t++) {
      inputIds[b * T + t] = BigInt(row.inputIds[t]);
      labels[b * T + t] = BigInt(row.labels[t]);
      attentionMask[b * T + t] = row.attentionMask[t];
      if (t > 0 && row.labels[t] !== IGNORE_INDEX) lossTokens++;
    }
  });
  return { shape: [B, T], inputIds, attentionMask, labels, labelShape: [B, T], lossTokens };
}

/** The pad id to use with a tokenizer's special ids: pad, else eos (GPT-2 has no pad), else 0. */
export function padIdFor(special: { readonly pad: number | null; readonly eos: number | null }): number {
  return special.pad ?? special.eos ?? 0;
}
