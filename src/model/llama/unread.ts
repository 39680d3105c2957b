/**
 * The Llama family's policy for checkpoint tensors the built graph does not read: the listed
 * allowances, and hints that name what the tensors suggest (usually another model_type).
 */
import type { UnreadAllowance } from '../weights.js';
import type { LlamaConfig } from './config.js';

/** Stored tensors the family may leave unread. */
export const LLAMA_UNREAD_ALLOWANCES: readonly UnreadAllowance[] = [
  { pattern: /(^|\.)rotary_emb\.inv_freq$/, name: '*.rotary_emb.inv_freq', reason: 'RoPE frequencies some exports store; the graph recomputes them from config.json' },
];

const LAYER = /(?:^|\.)layers\.(\d+)\./;

/** What the unread tensors of a `cfg` checkpoint suggest, or undefined when nothing specific. */
export function llamaUnreadHint(cfg: LlamaConfig, unread: readonly string[]): string | undefined {
  const has = (re: RegExp): boolean => unread.some((k) => re.test(k));
  const type = cfg.modelType;
  const hints: string[] = [];
  if (has(/\.(q_norm|k_norm)\.weight$/)) {
    hints.push(`Per-head q_norm/k_norm weights belong to Qwen3: set "model_type": "qwen3" in config.json (it says '${type}').`);
  }
  if (has(/\.(qkv_proj|gate_up_proj)\.weight$/)) hints.push(`Fused qkv_proj/gate_up_proj weights belong to Phi-3: set "model_type": "phi3" (it says '${type}').`);
  if (has(/\.(pre|post)_feedforward_layernorm\.weight$/)) hints.push(`pre/post_feedforward_layernorm weights belong to Gemma 2/3 (model_type gemma2 or gemma3_text), not '${type}'.`);
  if (has(/\.(q_proj|k_proj|v_proj)\.bias$/)) hints.push(`q/k/v biases: a Qwen2 checkpoint is "model_type": "qwen2"; otherwise set "attention_bias": true.`);
  if (has(/\.o_proj\.bias$/)) hints.push('An o_proj bias needs "attention_bias": true.');
  if (has(/\.mlp\.\w+\.bias$/)) hints.push('MLP biases need "mlp_bias": true.');
  if (cfg.tieWordEmbeddings && unread.some((k) => k === 'lm_head.weight')) {
    hints.push('config.json ties the output layer to model.embed_tokens.weight (tie_word_embeddings: true), so lm_head.weight is not read, as in transformers: ' +
      'if it is a copy of the embeddings, remove it from the checkpoint; if it is a trained head, set "tie_word_embeddings": false.');
  }
  const extraLayers = unread.map((k) => LAYER.exec(k)).filter((m) => m !== null && Number(m[1]) >= cfg.layers);
  if (extraLayers.length > 0) hints.push(`config.json says num_hidden_layers ${cfg.layers}, but the checkpoint holds layer ${Math.max(...extraLayers.map((m) => Number(m![1])))}.`);
  return hints.length > 0 ? hints.join(' ') : `If these tensors belong to the model, config.json ('${type}') does not describe this checkpoint.`;
}
