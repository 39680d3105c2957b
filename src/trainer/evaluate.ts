/**
 * Evaluation over encoded examples: mean loss and perplexity (summed as loss × scored tokens per
 * batch, so batches of different sizes weigh right), accuracy for classification (argmax in the
 * graph, only the class ids leave the session), and greedy-decoding exact match for
 * prompt/completion data.
 *
 * Exact match: each prompt is continued greedily, at most as many tokens as the reference
 * completion has (its eos included), stopping at eos; the generated text (eos removed) must equal
 * the reference completion's text after trimming surrounding whitespace.
 */
import { epochBatches, padBatchTo } from './data/batching.js';
import type { Batch } from './data/batching.js';
import type { EncodedDataset, EncodedExample } from './data/encode.js';
import { IGNORE_INDEX } from './data/records.js';
import type { TextTokenizer } from './data/tokenizer.js';
import { PREDICTED, ROWS } from './compile.js';
import { throwIfAborted } from './errors.js';
import type { AbortLike } from './errors.js';
import { ortTensor, runSession } from '../runtime/session.js';
import type { OrtSession, OrtTensor } from '../runtime/session.js';
import { selectFeeds } from './stepRunner.js';
import type { Feeds } from './stepRunner.js';
import type { EvalResult } from './types.js';

/** Graph input names of a model's batch tensors. */
export interface BatchInputNames {
  readonly inputIds: string;
  readonly attentionMask: string;
  readonly labels: string;
}

/**
 * How batch tensors are fed (the device's form, deviceForm.ts): padded to the fixed rows and
 * tokens the sessions were compiled for, or as batched; integers as int32 or int64.
 */
export interface FeedLayout {
  readonly fixed?: { readonly rows: number; readonly seq: number };
  readonly int32: boolean;
  /** Token id of padded positions (masked, never scored). */
  readonly padId: number;
}

/** Batches fed as they are, integers as int64 (the CPU). */
export const AS_BATCHED: FeedLayout = { int32: false, padId: 0 };

/** An integer tensor in the layout's type. */
export function integerTensor(values: BigInt64Array, dims: readonly number[], layout: FeedLayout): OrtTensor {
  return layout.int32 ? ortTensor('int32', Int32Array.from(values, Number), dims) : ortTensor('int64', values, dims);
}

/** A predicted-ids output (int64, or int32 where the form narrows it) as numbers. */
function idsOf(t: OrtTensor): number[] {
  return Array.from(t.data as BigInt64Array | Int32Array, Number);
}

/** What evaluation runs on. */
export interface EvalContext {
  readonly names: BatchInputNames;
  /** How the eval and generate sessions take their batch tensors; default {@link AS_BATCHED}. */
  readonly layout?: FeedLayout;
  readonly evalSession: OrtSession;
  /** Compiles (once) and returns the greedy-decoding session. */
  readonly generateSession: () => Promise<OrtSession>;
  /** Every other feed: frozen weights, adapter, saved tensors. */
  readonly constants: Readonly<Record<string, OrtTensor>>;
  readonly tokenizer: TextTokenizer | null;
  readonly padId: number;
  readonly eosId: number | null;
  readonly batchSize: number;
  readonly seqLen: number;
  readonly signal?: AbortLike;
}

/** Feeds of a batch's ids, mask and labels, as `layout` says (default: as batched, int64). */
export function batchFeeds(given: Batch, names: BatchInputNames, layout: FeedLayout = AS_BATCHED): Feeds {
  const batch = layout.fixed === undefined ? given : padBatchTo(given, layout.fixed.rows, layout.fixed.seq, layout.padId);
  const mask = new BigInt64Array(batch.attentionMask.length);
  for (let i = 0; i < mask.length; i++) mask[i] = batch.attentionMask[i] !== 0 ? 1n : 0n;
  return {
    [names.inputIds]: integerTensor(batch.inputIds, batch.shape, layout),
    [names.attentionMask]: integerTensor(mask, batch.shape, layout),
    [names.labels]: integerTensor(batch.labels, batch.labelShape, layout),
  };
}

/** Loss, perplexity, accuracy and exact match of `data` (see the module comment). */
export async function evaluateExamples(ctx: EvalContext, data: EncodedDataset, options: { maxExamples?: number; exactMatch?: boolean } = {}): Promise<EvalResult> {
  const examples = options.maxExamples !== undefined ? data.examples.slice(0, options.maxExamples) : data.examples;
  if (examples.length === 0) throw new Error('evaluate: no examples to evaluate');
  let lossSum = 0;
  let scored = 0;
  let correct = 0;
  const classification = data.kind === 'classification';
  for (const batch of epochBatches(examples, { batchSize: ctx.batchSize, seqLen: ctx.seqLen, padId: ctx.padId, seed: 0, epoch: 0, shuffle: false, padTo: 'longest' })) {
    throwIfAborted(ctx.signal, 'evaluation');
    const out = await runSession(ctx.evalSession, selectFeeds(ctx.evalSession, 'eval', ctx.constants, batchFeeds(batch, ctx.names, ctx.layout)));
    const loss = (out.loss.data as Float32Array)[0];
    lossSum += loss * batch.lossTokens;
    scored += batch.lossTokens;
    if (classification) {
      // Rows past the batch's own are padding (fixed shapes).
      const predicted = idsOf(out[PREDICTED]);
      for (let b = 0; b < batch.shape[0]; b++) if (predicted[b] === Number(batch.labels[b])) correct++;
    }
  }
  const loss = scored > 0 ? lossSum / scored : 0;
  const result: EvalResult = { loss, perplexity: Math.exp(loss), examples: examples.length, scored };
  if (classification) return { ...result, accuracy: correct / examples.length };
  if (data.kind === 'prompt-completion' && options.exactMatch !== false && ctx.tokenizer !== null) {
    return { ...result, exactMatch: await exactMatch(ctx, examples) };
  }
  return result;
}

/** Index of the first completion token (the first scored label). */
function promptLength(e: EncodedExample): number {
  const i = e.labels.findIndex((l) => l !== IGNORE_INDEX);
  return i < 0 ? e.inputIds.length : i;
}

/** Share of examples whose greedy completion matches the reference. */
async function exactMatch(ctx: EvalContext, examples: readonly EncodedExample[]): Promise<number> {
  const session = await ctx.generateSession();
  const tokenizer = ctx.tokenizer!;
  const text = (ids: readonly number[]): string => tokenizer.decode(ids.filter((id) => id !== ctx.eosId)).trim();
  let matches = 0;
  for (let start = 0; start < examples.length; start += ctx.batchSize) {
    const chunk = examples.slice(start, start + ctx.batchSize);
    const rows = chunk.map((e) => {
      const p = promptLength(e);
      return { ids: Array.from(e.inputIds.subarray(0, p)), reference: Array.from(e.inputIds.subarray(p)), generated: [] as number[], done: false };
    });
    for (;;) {
      throwIfAborted(ctx.signal, 'evaluation');
      const active = rows.filter((r) => !r.done);
      if (active.length === 0) break;
      // Fixed shapes: every call has the session's rows and tokens (pad rows point at row 0, unused).
      const layout = ctx.layout ?? AS_BATCHED;
      const T = layout.fixed?.seq ?? Math.max(...active.map((r) => r.ids.length));
      const R = layout.fixed?.rows ?? active.length;
      const inputIds = new BigInt64Array(R * T).fill(BigInt(ctx.padId));
      const mask = new BigInt64Array(R * T);
      const flat = new BigInt64Array(R);
      active.forEach((r, b) => {
        r.ids.forEach((id, t) => {
          inputIds[b * T + t] = BigInt(id);
          mask[b * T + t] = 1n;
        });
        flat[b] = BigInt(b * T + r.ids.length - 1);
      });
      const feeds: Feeds = {
        [ctx.names.inputIds]: integerTensor(inputIds, [R, T], layout),
        [ctx.names.attentionMask]: integerTensor(mask, [R, T], layout),
        [ROWS]: integerTensor(flat, [R], layout),
      };
      const out = await runSession(session, selectFeeds(session, 'generate', ctx.constants, feeds));
      const next = idsOf(out[PREDICTED]);
      active.forEach((r, b) => {
        const id = next[b];
        r.generated.push(id);
        r.ids.push(id);
        if (id === ctx.eosId || r.generated.length >= r.reference.length || r.ids.length >= ctx.seqLen) r.done = true;
      });
    }
    for (const r of rows) if (text(r.generated) === text(r.reference)) matches++;
  }
  return matches / examples.length;
}
