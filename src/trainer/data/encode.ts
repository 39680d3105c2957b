/**
 * Records → token ids and aligned labels, as transformers and TRL's SFTTrainer tokenize them,
 * truncated to the sequence length.
 *
 * Label convention (the one Hugging Face uses): `labels[t]` is aligned with `inputIds[t]` (it IS
 * the token at t, or -100), and the LOSS does the shift: logits at position t are scored against
 * labels[t + 1]. So labels[0] is never a target, and a prompt/completion example has -100 on every
 * prompt token, the first completion token being predicted from the last prompt token.
 *
 * Tokenization (TRL): text and prompt/completion records are encoded with the tokenizer's own
 * special tokens (`add_special_tokens=True`: `<s>` for Llama-2, `<|begin_of_text|>` for Llama-3,
 * nothing for GPT-2 or Qwen) and end with eos. A prompt and its completion are encoded together;
 * the loss mask starts after the tokens the prompt's own encoding shares with them (TRL's
 * `len(prompt_ids)` whenever those are a prefix; where BPE merges across the boundary, as in
 * `"A: " + "Paris"` → `" Paris"`, the merged token is scored, where TRL would mask it). Chat
 * records are rendered with the chat template and encoded without added special tokens (the
 * template writes them), loss on the assistant turns (see chatTemplate.ts).
 */
import { ChatTemplate } from './chatTemplate.js';
import type { ChatRecord, DataRecord, Dataset, RecordKind } from './records.js';
import { IGNORE_INDEX } from './records.js';
import { commonPrefixLength, tokenMaskOfSpans } from './tokenSpans.js';
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
  /** Cut examples longer than seqLen (default true). False keeps them whole, for packing, which cuts the packed stream into rows itself. */
  readonly truncate?: boolean;
  /** End text records and completions with eos, as TRL does (so the model learns to stop). Default: when the tokenizer has an eos. */
  readonly addEos?: boolean;
}

/** The encoded dataset and what encoding did to it. */
export interface EncodedDataset {
  readonly kind: RecordKind;
  readonly examples: readonly EncodedExample[];
  /** Records encoded (examples + dropped). */
  readonly records: number;
  /** Examples cut to seqLen. */
  readonly truncated: number;
  /** Examples left out because no label remained for the (shifted) loss, e.g. a completion cut away. */
  readonly dropped: number;
  /** Tokens of all records before truncation. */
  readonly tokens: number;
  /** Tokens cut off by truncation (dropped examples included). */
  readonly truncatedTokens: number;
  /** Class names (classification). */
  readonly labelNames?: readonly string[];
}

/** Ids and labels of one record, before truncation. */
interface RawExample {
  readonly ids: number[];
  readonly labels: number[];
  readonly classLabel: number;
}

/**
 * Tokenizes and truncates every record. `tokenizer` may be null only for pre-tokenized data; when
 * given, pre-tokenized ids are checked against its vocabulary.
 */
export function encodeDataset(dataset: Dataset, tokenizer: TextTokenizer | null, options: EncodeDatasetOptions): EncodedDataset {
  const { seqLen } = options;
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new RangeError(`encodeDataset: seqLen must be an integer ≥ 2, got ${seqLen}`);
  const eos = tokenizer?.special.eos ?? null;
  const addEos = options.addEos ?? eos !== null;
  if (addEos && eos === null) throw new Error(`encodeDataset: addEos is set but ${tokenizer?.source ?? 'the tokenizer'} has no eos token`);
  const encoder = new RecordEncoder(tokenizer, addEos ? eos : null);
  const truncate = options.truncate ?? true;

  const examples: EncodedExample[] = [];
  let truncated = 0;
  let dropped = 0;
  let tokens = 0;
  let truncatedTokens = 0;
  dataset.records.forEach((record, index) => {
    const where = record.kind === 'chat' && record.line !== undefined ? `${dataset.source}:${record.line}` : `${dataset.source} record ${index}`;
    const raw = encoder.encode(record, where);
    const { classLabel } = raw;
    let { ids, labels } = raw;
    tokens += ids.length;
    if (truncate && ids.length > seqLen) {
      truncatedTokens += ids.length - seqLen;
      ids = ids.slice(0, seqLen);
      labels = labels.slice(0, seqLen);
      truncated++;
    }
    if (classLabel < 0 && !hasShiftedTarget(labels)) {
      dropped++;
      return;
    }
    examples.push({ inputIds: Int32Array.from(ids), labels: Int32Array.from(labels), classLabel });
  });
  const out: EncodedDataset = { kind: dataset.kind, examples, records: dataset.records.length, truncated, dropped, tokens, truncatedTokens };
  return dataset.labelNames === undefined ? out : { ...out, labelNames: dataset.labelNames };
}

/** Encodes records of any kind with one tokenizer (compiling its chat templates once). */
class RecordEncoder {
  private readonly templates = new Map<boolean, ChatTemplate>();

  constructor(private readonly tokenizer: TextTokenizer | null, private readonly eos: number | null) {}

  encode(record: DataRecord, where: string): RawExample {
    if (record.kind === 'tokenized') return this.pretokenized(record.inputIds, record.labels ?? record.inputIds, where);
    const tokenizer = this.tokenizer;
    if (tokenizer === null) throw new Error(`${where}: a ${record.kind} record needs a tokenizer`);
    switch (record.kind) {
      case 'text': {
        const ids = this.withEos(tokenizer.encode(record.text, { addSpecialTokens: true }));
        return { ids, labels: ids.slice(), classLabel: -1 };
      }
      case 'prompt-completion': {
        const prompt = tokenizer.encode(record.prompt, { addSpecialTokens: true });
        const ids = this.withEos(tokenizer.encode(record.prompt + record.completion, { addSpecialTokens: true }));
        const boundary = commonPrefixLength(prompt, ids);
        return { ids, labels: ids.map((id, t) => (t < boundary ? IGNORE_INDEX : id)), classLabel: -1 };
      }
      case 'chat':
        return this.chat(record, tokenizer, where);
      case 'classification': {
        const ids = tokenizer.encode(record.text, { addSpecialTokens: true });
        if (ids.length === 0) throw new Error(`${where}: the text encodes to no tokens`);
        return { ids, labels: ids.map(() => IGNORE_INDEX), classLabel: record.label };
      }
    }
  }

  private pretokenized(inputIds: readonly number[], labels: readonly number[], where: string): RawExample {
    if (labels.length !== inputIds.length) throw new Error(`${where}: labels has ${labels.length} entries but input_ids ${inputIds.length}`);
    if (this.tokenizer !== null) {
      const { vocabSize, source } = this.tokenizer;
      const bad = inputIds.findIndex((id) => id >= vocabSize);
      if (bad >= 0) throw new Error(`${where}: input_ids[${bad}] = ${inputIds[bad]} is outside the vocabulary of ${source} (${vocabSize} tokens)`);
    }
    return { ids: [...inputIds], labels: [...labels], classLabel: -1 };
  }

  private chat(record: ChatRecord, tokenizer: TextTokenizer, where: string): RawExample {
    const withTools = record.tools !== undefined && record.tools.length > 0;
    let template = this.templates.get(withTools);
    if (template === undefined) {
      try {
        template = ChatTemplate.compile(tokenizer.chatTemplates, tokenizer.specialTokens, withTools, tokenizer.source);
      } catch (err) {
        throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
      }
      this.templates.set(withTools, template);
    }
    let rendered;
    try {
      rendered = template.renderForTraining(record);
    } catch (err) {
      throw new Error(`${where}: the chat template of ${tokenizer.source} cannot render this conversation: ${(err as Error).message}`, { cause: err });
    }
    const encode = (text: string): number[] => tokenizer.encode(text, { addSpecialTokens: false });
    const ids = encode(rendered.text);
    const scored = tokenMaskOfSpans(rendered.text, ids, rendered.assistantSpans, encode);
    return { ids, labels: ids.map((id, t) => (scored[t] ? id : IGNORE_INDEX)), classLabel: -1 };
  }

  /** `ids` ending with eos (when eos is added and they do not end with it already). */
  private withEos(ids: number[]): number[] {
    if (this.eos !== null && ids[ids.length - 1] !== this.eos) ids.push(this.eos);
    return ids;
  }
}

/** Whether some label at position ≥ 1 is a target (position 0 is never predicted). */
function hasShiftedTarget(labels: readonly number[]): boolean {
  for (let t = 1; t < labels.length; t++) if (labels[t] !== IGNORE_INDEX) return true;
  return false;
}
