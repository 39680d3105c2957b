/**
 * GPT-2's policy for checkpoint tensors the built graph does not read (see ../weights.ts
 * `checkAllRead`): the buffers older exports store, the language-model head a sequence classifier
 * leaves aside (as transformers' GPT2ForSequenceClassification does), and hints for the rest.
 */
import type { UnreadAllowance } from '../weights.js';
import type { Gpt2Config } from './config.js';

/** Stored tensors GPT-2 may leave unread for `task`. */
export function gpt2UnreadAllowances(task: 'causal-lm' | 'sequence-classification'): UnreadAllowance[] {
  const allowances: UnreadAllowance[] = [
    { pattern: /(^|\.)h\.\d+\.attn\.(bias|masked_bias)$/, name: '*.attn.bias, *.attn.masked_bias', reason: 'causal-mask buffers older GPT-2 exports store; the graph builds its own mask' },
  ];
  if (task === 'sequence-classification') {
    allowances.push({ pattern: /^lm_head\.weight$/, name: 'lm_head.weight', reason: 'the language-model head, which sequence classification does not use (as in transformers)' });
  }
  return allowances;
}

const LAYER = /(?:^|\.)h\.(\d+)\./;

/** What the unread tensors of a GPT-2 checkpoint suggest. */
export function gpt2UnreadHint(cfg: Gpt2Config, unread: readonly string[]): string | undefined {
  const hints: string[] = [];
  if (cfg.tieWordEmbeddings && unread.includes('lm_head.weight')) {
    hints.push('GPT-2 ties the output layer to transformer.wte.weight (tie_word_embeddings), so lm_head.weight is not read, as in transformers: '
      + 'if it is a copy of the embeddings, remove it from the checkpoint; if it is a trained head, set "tie_word_embeddings": false.');
  }
  if (unread.some((k) => k === 'score.weight' || k.startsWith('score.'))) hints.push('score.* is a sequence-classification head: train with a classification task (data with labels).');
  const extra = unread.map((k) => LAYER.exec(k)).filter((m) => m !== null && Number(m[1]) >= cfg.nLayer);
  if (extra.length > 0) hints.push(`config.json says n_layer ${cfg.nLayer}, but the checkpoint holds layer ${Math.max(...extra.map((m) => Number(m![1])))}.`);
  if (unread.some((k) => /(^|\.)(layers|self_attn|mlp\.(gate|up|down)_proj)\./.test(k))) hints.push("These look like Llama-family weights: config.json's model_type should name that family, not gpt2.");
  return hints.length > 0 ? hints.join(' ') : 'If these tensors belong to the model, config.json (gpt2) does not describe this checkpoint.';
}
