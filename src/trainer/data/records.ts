/**
 * The record kinds a dataset holds, shared by JSONL files and the built-in synthetic tasks.
 *
 * | kind                | JSONL shape                                   | loss on                          |
 * |---------------------|-----------------------------------------------|----------------------------------|
 * | `text`              | `{"text"}`                                    | every token                      |
 * | `prompt-completion` | `{"prompt","completion"}`, or Alpaca's        | completion tokens only           |
 * |                     | `{"instruction","input","output"}`            |                                  |
 * | `chat`              | `{"messages":[{"role","content"},…]}`         | assistant turns only             |
 * | `classification`    | `{"text","label"}`                            | one class label per sequence     |
 * | `tokenized`         | `{"input_ids"}` (+ `"labels"`)                | labels (default: every token)    |
 *
 * Every record may carry a `group` (a task family, a label, a topic) that non-IID splits use.
 */

/** Plain text for causal LM loss on all tokens. */
export interface TextRecord {
  readonly kind: 'text';
  readonly text: string;
  readonly group?: string;
}

/** Instruction-style pair: loss on the completion only. */
export interface PromptCompletionRecord {
  readonly kind: 'prompt-completion';
  readonly prompt: string;
  readonly completion: string;
  readonly group?: string;
}

/** One message of a conversation: `role`, `content` and whatever else a template reads (`tool_calls`, …). */
export interface ChatMessage {
  readonly role: string;
  readonly content?: string | null;
  readonly [field: string]: unknown;
}

/** A conversation rendered with the tokenizer's chat template: loss on the assistant turns. */
export interface ChatRecord {
  readonly kind: 'chat';
  readonly messages: readonly ChatMessage[];
  /** Tool (function) definitions the template renders (`tools`). */
  readonly tools?: readonly unknown[];
  /** More template variables (TRL's `chat_template_kwargs`, e.g. `enable_thinking`). */
  readonly templateKwargs?: Readonly<Record<string, unknown>>;
  /** 1-based line of its JSONL file, for errors found when it is rendered. */
  readonly line?: number;
  readonly group?: string;
}

/** Sequence classification: `label` is a class id in [0, labelNames.length). */
export interface ClassificationRecord {
  readonly kind: 'classification';
  readonly text: string;
  readonly label: number;
  readonly group?: string;
}

/** Already tokenized; `labels` (same length, -100 = ignored) defaults to `inputIds`. */
export interface TokenizedRecord {
  readonly kind: 'tokenized';
  readonly inputIds: readonly number[];
  readonly labels?: readonly number[];
  readonly group?: string;
}

export type DataRecord = TextRecord | PromptCompletionRecord | ChatRecord | ClassificationRecord | TokenizedRecord;
export type RecordKind = DataRecord['kind'];

/** A loaded dataset: records of one kind. */
export interface Dataset<R extends DataRecord = DataRecord> {
  /** `task:NAME` or the file path. */
  readonly source: string;
  readonly kind: RecordKind;
  readonly records: readonly R[];
  /** Class names by id (classification only). */
  readonly labelNames?: readonly string[];
}

/** The label the loss ignores (PyTorch's `CrossEntropyLoss(ignore_index=-100)`, as in HF). */
export const IGNORE_INDEX = -100;
