/**
 * The BERT family's policy for checkpoint tensors a sequence classifier does not read (see
 * ../weights.ts `checkAllRead`): what pretrained checkpoints carry besides the encoder and that
 * transformers' BertForSequenceClassification / RobertaForSequenceClassification also leave aside —
 * the pretraining heads, the position-id buffer, and RoBERTa's pooler — and hints for the rest.
 */
import type { UnreadAllowance } from '../weights.js';
import type { BertConfig } from './config.js';

/** Stored tensors the family may leave unread. */
export function bertUnreadAllowances(cfg: BertConfig): UnreadAllowance[] {
  const allowances: UnreadAllowance[] = [
    { pattern: /(^|\.)embeddings\.position_ids$/, name: '*.embeddings.position_ids', reason: 'a buffer of 0..max_position_embeddings−1 some exports store; the graph makes its own' },
    { pattern: /^cls\.(predictions|seq_relationship)\./, name: 'cls.predictions.*, cls.seq_relationship.*', reason: "BERT's pretraining heads (masked LM, next sentence), which classification does not use (as in transformers)" },
    { pattern: /^lm_head\./, name: 'lm_head.*', reason: "RoBERTa's masked-LM head, which classification does not use (as in transformers)" },
  ];
  if (cfg.prefix === 'roberta') {
    allowances.push({ pattern: /^roberta\.pooler\./, name: 'roberta.pooler.*', reason: 'RobertaForSequenceClassification has no pooler (its head is classifier.dense → out_proj), as in transformers' });
  }
  return allowances;
}

const LAYER = /(?:^|\.)layer\.(\d+)\./;

/** What the unread tensors of a BERT-family checkpoint suggest. */
export function bertUnreadHint(cfg: BertConfig, unread: readonly string[]): string | undefined {
  const hints: string[] = [];
  const other = cfg.prefix === 'bert' ? 'roberta' : 'bert';
  if (unread.some((k) => k.startsWith(`${other}.`))) hints.push(`The checkpoint's keys start with '${other}.': config.json's model_type ('${cfg.modelType}') names the other family.`);
  const extra = unread.map((k) => LAYER.exec(k)).filter((m) => m !== null && Number(m[1]) >= cfg.layers);
  if (extra.length > 0) hints.push(`config.json says num_hidden_layers ${cfg.layers}, but the checkpoint holds layer ${Math.max(...extra.map((m) => Number(m![1])))}.`);
  return hints.length > 0 ? hints.join(' ') : `If these tensors belong to the model, config.json ('${cfg.modelType}') does not describe this checkpoint.`;
}
