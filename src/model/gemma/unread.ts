/**
 * Gemma's policy for checkpoint tensors the built graph does not read: the Llama family's
 * allowances, and hints that name what the tensors suggest (Gemma 3's q/k norms in a Gemma 2
 * config, a multimodal checkpoint's vision tower, an untied head, extra layers).
 */
import { LLAMA_UNREAD_ALLOWANCES } from '../llama/unread.js';
import type { UnreadAllowance } from '../weights.js';
import type { GemmaConfig } from './config.js';

/** Stored tensors the family may leave unread (the RoPE frequencies some exports store). */
export const GEMMA_UNREAD_ALLOWANCES: readonly UnreadAllowance[] = LLAMA_UNREAD_ALLOWANCES;

const LAYER = /(?:^|\.)layers\.(\d+)\./;

/** What the unread tensors of a `cfg` checkpoint suggest, or a general sentence. */
export function gemmaUnreadHint(cfg: GemmaConfig, unread: readonly string[]): string {
  const has = (re: RegExp): boolean => unread.some((k) => re.test(k));
  const hints: string[] = [];
  if (has(/(^|\.)(vision_tower|multi_modal_projector)\./)) {
    hints.push('vision_tower / multi_modal_projector tensors belong to a multimodal Gemma 3 checkpoint: save its language model as a text checkpoint first (docs/models.md).');
  }
  if (cfg.modelType === 'gemma2' && has(/\.(q_norm|k_norm)\.weight$/)) {
    hints.push('Per-head q_norm/k_norm weights belong to Gemma 3: set "model_type": "gemma3_text" in config.json (it says \'gemma2\').');
  }
  if (has(/\.(q_proj|k_proj|v_proj|o_proj)\.bias$/)) hints.push('Attention biases need "attention_bias": true.');
  if (cfg.tieWordEmbeddings && unread.includes('lm_head.weight')) {
    hints.push('config.json ties the output layer to model.embed_tokens.weight (tie_word_embeddings, true by default for Gemma), so lm_head.weight is not read, as in transformers: ' +
      'if it is a copy of the embeddings, remove it from the checkpoint; if it is a trained head, set "tie_word_embeddings": false.');
  }
  const extraLayers = unread.map((k) => LAYER.exec(k)).filter((m) => m !== null && Number(m[1]) >= cfg.layers);
  if (extraLayers.length > 0) hints.push(`config.json says num_hidden_layers ${cfg.layers}, but the checkpoint holds layer ${Math.max(...extraLayers.map((m) => Number(m![1])))}.`);
  return hints.length > 0 ? hints.join(' ') : `If these tensors belong to the model, config.json ('${cfg.modelType}') does not describe this checkpoint.`;
}
