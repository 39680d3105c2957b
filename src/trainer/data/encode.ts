/**
 * Records → token ids and aligned labels, truncated to the sequence length.
 *
 * Label convention (the one Hugging Face uses): `labels[t]` is aligned with `inputIds[t]` (it IS
 * the token at t, or -100), and the LOSS does the shift: logits at position t are scored against
 * labels[t + 1]. So labels[0] is never a target, and a prompt/completion example has -100 on every
 * prompt token, the first completion token being predicted from the last prompt token.
 */
import type { DataRecord, Dataset, RecordKind } from './records.js';
import { IGNORE_INDEX } from './records.js';
import type { TextTokenizer } from './tokenizer.js';

/** One example ready for batching. */
export interface EncodedExample {
  readonly inputIds: Int32Array;
  /** Aligned with inputIds; -100 where no loss (prompt tokens; every token of a classification example). */
  readonly labels: Int32Array;
  /** The class id of a classification example; -1 otherwise. */
  readonly classLabel: number;
}

/** Options of {@link encodeDataset}. */
export interface EncodeDatasetOptions {
  /** Longest sequence kept; longer examples are cut on the right. */
  readonly seqLen: number;
  /** Prepend bos to text and prompt records. Default: when the tokenizer has a bos different from eos (Llama yes, GPT-2 no). */
  readonly addBos?: boolean;
  /** Append eos to text and completion (so the model learns to stop). Default: when the tokenizer has an eos. */
  readonly addEos?: boolean;
}

/** The encoded dataset and what encoding did to it. */
export interface EncodedDataset {
  readonly kind: RecordKind;
  readonly examples: readonly EncodedExample[];
  /** Examples cut to seqLen. */
  readonly truncated: number;
  /** Examples left out because no label remained for the (shifted) loss, e.g. a completion cut away. */
  readonly dropped: number;
  /** Class names (classification). */
  readonly labelNames?: readonly string[];
}

/**
 * Tokenizes and truncates every record. `tokenizer` may be null only for pre-tokenized data; when
 * given, pre-tokenized ids are checked against its vocabulary.
 */
export function encodeDataset(dataset: Dataset, tokenizer: TextTokenizer | null, options: EncodeDatasetOptions): EncodedDataset {
  const { seqLen } = options;
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new RangeError(`encodeDataset: seqLen must be an integer ≥ 2, got ${seqLen}`);
  const bos = tokenizer?.special.bos ?? null;
  const eos = tokenizer?.special.eos ?? null;
  const addBos = options.addBos ?? (bos !== null && bos !== eos);
  const addEos = options.addEos ?? eos !== null;
  if (addBos && bos === null) throw new Error(`encodeDataset: addBos is set but ${tokenizer?.source ?? 'the tokenizer'} has no bos token`);
  if (addEos && eos === null) throw new Error(`encodeDataset: addEos is set but ${tokenizer?.source ?? 'the tokenizer'} has no eos token`);
  const prefix = addBos ? [bos!] : [];
  const suffix = addEos ? [eos!] : [];

  const examples: EncodedExample[] = [];
  let truncated = 0;
  let dropped = 0;
  dataset.records.forEach((record, index) => {
    const { ids, labels, classLabel } = encodeRecord(record, tokenizer, prefix, suffix, `${dataset.source} record ${index}`);
    let inputIds = ids;
    let lab = labels;
    if (inputIds.length > seqLen) {
      inputIds = inputIds.slice(0, seqLen);
      lab = lab.slice(0, seqLen);
      truncated++;
    }
    if (classLabel < 0 && !hasShiftedTarget(lab)) {
      dropped++;
      return;
    }
    examples.push({ inputIds: Int32Array.from(inputIds), labels: Int32Array.from(lab), classLabel });
  });
  const out: EncodedDataset = { kind: dataset.kind, examples, truncated, dropped };
  return dataset.labelNames === undefined ? out : { ...out, labelNames: dataset.labelNames };
}

function encodeRecord(
  record: DataRecord,
  tokenizer: TextTokenizer | null,
  prefix: readonly number[],
  suffix: readonly number[],
  where: string,
): { ids: number[]; labels: number[]; classLabel: number } {
  if (record.kind === 'tokenized') {
    const labels = record.labels ?? record.inputIds;
    if (labels.length !== record.inputIds.length) throw new Error(`${where}: labels has ${labels.length} entries but input_ids ${record.inputIds.length}`);
    if (tokenizer !== null) {
      const bad = record.inputIds.findIndex((id) => id >= tokenizer.vocabSize);
      if (bad >= 0) throw new Error(`${where}: input_ids[${bad}] = ${record.inputIds[bad]} is outside the vocabulary of ${tokenizer.source} (${tokenizer.vocabSize} tokens)`);
    }
    return { ids: [...record.inputIds], labels: [...labels], classLabel: -1 };
  }
  if (tokenizer === null) throw new Error(`${where}: a ${record.kind} record needs a tokenizer`);
  switch (record.kind) {
    case 'text': {
      const ids = [...prefix, ...tokenizer.encode(record.text), ...suffix];
      return { ids, labels: ids.slice(), classLabel: -1 };
    }
    case 'prompt-completion': {
      // Prompt and completion are tokenized apart so that the loss mask falls exactly on the boundary.
      const prompt = [...prefix, ...tokenizer.encode(record.prompt)];
      const completion = [...tokenizer.encode(record.completion), ...suffix];
      return { ids: [...prompt, ...completion], labels: [...prompt.map(() => IGNORE_INDEX), ...completion], classLabel: -1 };
    }
    case 'classification': {
      const ids = tokenizer.encode(record.text, { addSpecialTokens: true });
      if (ids.length === 0) throw new Error(`${where}: the text encodes to no tokens`);
      return { ids, labels: ids.map(() => IGNORE_INDEX), classLabel: record.label };
    }
  }
}

/** Whether some label at position ≥ 1 is a target (position 0 is never predicted). */
function hasShiftedTarget(labels: readonly number[]): boolean {
  for (let t = 1; t < labels.length; t++) if (labels[t] !== IGNORE_INDEX) return true;
  return false;
}
