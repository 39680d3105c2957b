/**
 * Alpaca records `{"instruction", "input", "output"}` as prompt/completion pairs: the prompt is the
 * Stanford Alpaca template (with or without its Input section, as `input` is empty or not) ending
 * in `### Response:\n`, the completion is `output` — the text of the Alpaca dataset's `text`
 * column. Loss falls on the output (and the eos after it), as for any prompt/completion record.
 */
import type { PromptCompletionRecord } from './records.js';

const PREAMBLE_WITH_INPUT = 'Below is an instruction that describes a task, paired with an input that provides further context. '
  + 'Write a response that appropriately completes the request.';
const PREAMBLE = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.';

/** The Alpaca prompt of an instruction and its (possibly empty) input. */
export function alpacaPrompt(instruction: string, input: string): string {
  return input.length > 0
    ? `${PREAMBLE_WITH_INPUT}\n\n### Instruction:\n${instruction}\n\n### Input:\n${input}\n\n### Response:\n`
    : `${PREAMBLE}\n\n### Instruction:\n${instruction}\n\n### Response:\n`;
}

/** An Alpaca record as the prompt/completion record it trains as. */
export function alpacaRecord(instruction: string, input: string, output: string, group?: string): PromptCompletionRecord {
  const record: PromptCompletionRecord = { kind: 'prompt-completion', prompt: alpacaPrompt(instruction, input), completion: output };
  return group === undefined ? record : { ...record, group };
}
