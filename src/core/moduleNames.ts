/**
 * What a module name says about its role, for per-type and per-layer reports: the module type
 * (q, k, v, o, fused qkv, mlp, other) and the transformer layer index, across the naming schemes of
 * GPT-2 (`transformer.h.3.attn.c_attn`), Llama/Mistral (`model.layers.12.self_attn.q_proj`),
 * BERT/RoBERTa (`encoder.layer.5.attention.self.query`), GPT-NeoX, Falcon, Phi, OPT and DistilBERT.
 */

export type ModuleType = 'q' | 'k' | 'v' | 'o' | 'qkv' | 'mlp' | 'other';
export const MODULE_TYPES: readonly ModuleType[] = ['q', 'k', 'v', 'o', 'qkv', 'mlp', 'other'];

const BY_LAST_SEGMENT: Readonly<Record<string, ModuleType>> = {
  q_proj: 'q',
  query: 'q',
  q: 'q',
  q_lin: 'q',
  wq: 'q',
  k_proj: 'k',
  key: 'k',
  k: 'k',
  k_lin: 'k',
  wk: 'k',
  v_proj: 'v',
  value: 'v',
  v: 'v',
  v_lin: 'v',
  wv: 'v',
  o_proj: 'o',
  out_proj: 'o',
  o: 'o',
  out_lin: 'o',
  wo: 'o',
  c_attn: 'qkv',
  qkv_proj: 'qkv',
  qkv: 'qkv',
  query_key_value: 'qkv',
  wqkv: 'qkv',
  in_proj: 'qkv',
  gate_proj: 'mlp',
  up_proj: 'mlp',
  down_proj: 'mlp',
  gate_up_proj: 'mlp',
  c_fc: 'mlp',
  fc1: 'mlp',
  fc2: 'mlp',
  fc_in: 'mlp',
  fc_out: 'mlp',
  w1: 'mlp',
  w2: 'mlp',
  w3: 'mlp',
  dense_h_to_4h: 'mlp',
  dense_4h_to_h: 'mlp',
  lin1: 'mlp',
  lin2: 'mlp',
};

/** Segments that decorate a module path without naming it (PEFT wrappers, parameter names). */
const DECORATIONS = new Set(['weight', 'bias', 'lora_a', 'lora_b', 'default', 'base_layer']);

const ATTENTION_PARENTS = new Set(['attn', 'attention', 'self_attn', 'self_attention', 'selfattention']);

/**
 * Classifies a module by name. `c_proj` is attention output under `attn` and MLP under `mlp`
 * (GPT-2); `dense` is attention output inside an `attention` block (BERT, GPT-NeoX) and MLP
 * elsewhere (BERT `intermediate.dense`, `output.dense`), except the pooler.
 */
export function classifyModule(name: string): ModuleType {
  const segments = name.split('.').filter((s) => s !== '' && !DECORATIONS.has(s.toLowerCase()));
  if (segments.length === 0) return 'other';
  const last = segments[segments.length - 1].toLowerCase();
  const lower = segments.map((s) => s.toLowerCase());
  const inAttention = lower.slice(0, -1).some((s) => ATTENTION_PARENTS.has(s));
  if (last === 'c_proj') {
    if (inAttention) return 'o';
    return lower.includes('mlp') ? 'mlp' : 'other';
  }
  if (last === 'dense') {
    if (inAttention) return 'o';
    if (lower.includes('pooler')) return 'other';
    return 'mlp';
  }
  return BY_LAST_SEGMENT[last] ?? 'other';
}

const LAYER_PATTERN = /(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)(?:\.|$)/;

/** The transformer layer index in a module name (`layers.12.`, `h.3.`, `layer.5.`, `blocks.0.`), or null. */
export function layerIndex(name: string): number | null {
  const m = LAYER_PATTERN.exec(name);
  return m === null ? null : Number(m[1]);
}
