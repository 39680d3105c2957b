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
import { epochBatches } from './data/batching.js';
import type { Batch } from './data/batching.js';
import type { EncodedDataset, EncodedExample } from './data/encode.js';
import { IGNORE_INDEX } from './data/records.js';
import type { TextTokenizer } from './data/tokenizer.js';
import { PREDICTED, ROWS } from './compile.js';
import { throwIfAborted } from './errors.js';
import type { AbortLike } from './errors.js';
import { int64Tensor, runSession } from '../runtime/session.js';
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

/** What evaluation runs on. */
export interface EvalContext {
  readonly names: BatchInputNames;
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

/** Feeds of a batch's ids, mask (as int64) and labels. */
export function batchFeeds(batch: Batch, names: BatchInputNames): Feeds {
  const mask = new BigInt64Array(batch.attentionMask.length);
  for (let i = 0; i < mask.length; i++) mask[i] = batch.attentionMask[i] !== 0 ? 1n : 0n;
  return {
    [names.inputIds]: int64Tensor(batch.inputIds, batch.shape),
    [names.attentionMask]: int64Tensor(mask, batch.shape),
    [names.labels]: int64Tensor(batch.labels, batch.labelShape),
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
    const out = await runSession(ctx.evalSession, selectFeeds(ctx.evalSession, 'eval', ctx.constants, batchFeeds(batch, ctx.names)));
    const loss = (out.loss.data as Float32Array)[0];
    lossSum += loss * batch.lossTokens;
    scored += batch.lossTokens;
    if (classification) {
      const predicted = out[PREDICTED].data as BigInt64Array;
      for (let b = 0; b < predicted.length; b++) if (predicted[b] === batch.labels[b]) correct++;
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
      const T = Math.max(...active.map((r) => r.ids.length));
      const ids = new BigInt64Array(active.length * T).fill(BigInt(ctx.padId));
      const mask = new BigInt64Array(active.length * T);
      const flat = new BigInt64Array(active.length);
      active.forEach((r, b) => {
        r.ids.forEach((id, t) => {
          ids[b * T + t] = BigInt(id);
          mask[b * T + t] = 1n;
        });
        flat[b] = BigInt(b * T + r.ids.length - 1);
      });
      const feeds: Feeds = {
        [ctx.names.inputIds]: int64Tensor(ids, [active.length, T]),
        [ctx.names.attentionMask]: int64Tensor(mask, [active.length, T]),
        [ROWS]: int64Tensor(flat, [active.length]),
      };
      const out = await runSession(session, selectFeeds(session, 'generate', ctx.constants, feeds));
      const next = out[PREDICTED].data as BigInt64Array;
      active.forEach((r, b) => {
        const id = Number(next[b]);
        r.generated.push(id);
        r.ids.push(id);
        if (id === ctx.eosId || r.generated.length >= r.reference.length || r.ids.length >= ctx.seqLen) r.done = true;
      });
    }
    for (const r of rows) if (text(r.generated) === text(r.reference)) matches++;
  }
  return matches / examples.length;
}
