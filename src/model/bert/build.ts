/**
 * BERT and RoBERTa as sequence classifiers, HF's `BertForSequenceClassification` and
 * `RobertaForSequenceClassification`: embeddings (word + position + token type 0, LayerNorm) →
 * N × post-norm encoder layers (bidirectional self-attention with the padding mask, GELU MLP) →
 * the classification head on the first token, cross-entropy over `num_labels`.
 *
 * Inputs: `input_ids`, `attention_mask`, `labels` `[batch]`, `dropout_seed` (training with a
 * dropout > 0), every checkpoint tensor under its HF name (`bert.encoder.layer.0.…`), LoRA factors
 * `<path>.lora_A` / `<path>.lora_B`, and the head's tensors (always trainable, as PEFT's SEQ_CLS
 * task adds `classifier` to modules_to_save). Token type ids are all 0.
 */
import { GraphBuilder, type Value } from '../../graph/builder.js';
import type { FloatDType } from '../../graph/dtype.js';
import { crossEntropy } from '../../graph/nn/crossEntropy.js';
import { dropout } from '../../graph/nn/dropout.js';
import { geluErf, geluTanh } from '../../graph/nn/gelu.js';
import { linear } from '../../graph/nn/linear.js';
import { loraLinear } from '../../graph/nn/lora.js';
import { add } from '../../graph/ops/add.js';
import { cast } from '../../graph/ops/cast.js';
import { gather } from '../../graph/ops/gather.js';
import { layerNormalization } from '../../graph/ops/layerNormalization.js';
import { equal, greaterOrEqual, logicalNot } from '../../graph/ops/logical.js';
import { matMul } from '../../graph/ops/matMul.js';
import { mul } from '../../graph/ops/mul.js';
import { arange } from '../../graph/ops/range.js';
import { slice } from '../../graph/ops/slice.js';
import { unsqueeze } from '../../graph/ops/unsqueeze.js';
import type { Dim } from '../../graph/shape.js';
import { ModelError } from '../errors.js';
import { multiHeadAttention } from '../llama/attention.js';
import type { BuildOptions, ModelGraph } from '../types.js';
import { ModelInputs, adaptedPaths } from '../weights.js';
import { bertUnreadAllowances, bertUnreadHint } from './unread.js';
import { bertMaxSeqLen, parseBertConfig, type BertConfig } from './config.js';
import { classificationHead } from './head.js';

/** Graph input names of the data. */
export const BERT_INPUTS = { inputIds: 'input_ids', attentionMask: 'attention_mask', labels: 'labels', dropoutSeed: 'dropout_seed' } as const;

export interface BertBuildOptions extends BuildOptions {
  /** Float type of the graph (float32 default). onnxruntime's CPU Erf is float32-only, so `gelu` needs float32 there. */
  readonly dtype?: FloatDType;
}

/** PEFT paths of the encoder's linear modules (the LoRA candidates), `pooler.dense` last for BERT. */
export function bertModulePaths(prefix: 'bert' | 'roberta', layers: number): string[] {
  const out: string[] = [];
  for (let l = 0; l < layers; l++) {
    const p = `${prefix}.encoder.layer.${l}`;
    for (const m of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense', 'intermediate.dense', 'output.dense']) out.push(`${p}.${m}`);
  }
  if (prefix === 'bert') out.push('bert.pooler.dense');
  return out;
}

/** What the encoder and the head share while one graph is built. */
export interface BertContext {
  readonly cfg: BertConfig;
  readonly inputs: ModelInputs;
  /** `nn.Linear` at a module path (`[out, in]` weight and a bias), LoRA-adapted when selected. */
  proj(x: Value, path: string, inF: number, outF: number): Value;
  /** Training-mode dropout (identity when not training or the rate is 0). */
  drop(x: Value, rate: number): Value;
}

/**
 * RoBERTa's `create_position_ids_from_input_ids`: `cumsum(ids ≠ pad)·(ids ≠ pad) + pad`. The
 * running count is a product with an upper-triangular ones matrix (exact for seq < 2²⁴).
 */
function robertaPositions(ids: Value, seq: Dim, pad: number, dtype: FloatDType): Value {
  const isToken = cast(logicalNot(equal(ids, pad)), dtype);
  const r = arange(ids, seq);
  const upper = cast(greaterOrEqual(unsqueeze(r, 0), unsqueeze(r, 1)), dtype);
  return add(cast(mul(matMul(isToken, upper), isToken), 'int64'), pad);
}

function layerNorm(ctx: BertContext, x: Value, path: string): Value {
  const d = ctx.cfg.hidden;
  return layerNormalization(x, ctx.inputs.weight(`${path}.weight`, [d]), ctx.inputs.weight(`${path}.bias`, [d]), { epsilon: ctx.cfg.layerNormEps });
}

function embeddings(ctx: BertContext, ids: Value, seq: Dim, dtype: FloatDType): Value {
  const { cfg, inputs } = ctx;
  const p = `${cfg.prefix}.embeddings`;
  const d = cfg.hidden;
  const words = gather(inputs.weight(`${p}.word_embeddings.weight`, [cfg.vocab, d]), ids);
  const table = inputs.weight(`${p}.position_embeddings.weight`, [cfg.maxPositions, d]);
  // Gathers (not a Slice to a symbolic seq) keep the tables' gradients defined for trainAll.
  const positionIds = cfg.prefix === 'roberta' ? robertaPositions(ids, seq, cfg.padTokenId, dtype) : arange(ids, seq);
  const positions = gather(table, positionIds);
  const tokenType = slice(inputs.weight(`${p}.token_type_embeddings.weight`, [cfg.typeVocab, d]), 0, 0, 1);
  return ctx.drop(layerNorm(ctx, add(add(words, positions), tokenType), `${p}.LayerNorm`), cfg.hiddenDropout);
}

function encoderLayer(ctx: BertContext, h: Value, l: number, mask: Value): Value {
  const { cfg } = ctx;
  const d = cfg.hidden;
  const p = `${cfg.prefix}.encoder.layer.${l}`;
  const q = ctx.proj(h, `${p}.attention.self.query`, d, d);
  const k = ctx.proj(h, `${p}.attention.self.key`, d, d);
  const v = ctx.proj(h, `${p}.attention.self.value`, d, d);
  const attn = multiHeadAttention(q, k, v, { heads: cfg.heads, kvHeads: cfg.heads, headDim: d / cfg.heads }, { mask, dropout: (probs) => ctx.drop(probs, cfg.attentionDropout) });
  const attnOut = ctx.drop(ctx.proj(attn, `${p}.attention.output.dense`, d, d), cfg.hiddenDropout);
  const h1 = layerNorm(ctx, add(attnOut, h), `${p}.attention.output.LayerNorm`);
  const inner = ctx.proj(h1, `${p}.intermediate.dense`, d, cfg.intermediate);
  const act = cfg.activation === 'gelu' ? geluErf(inner) : geluTanh(inner);
  const out = ctx.drop(ctx.proj(act, `${p}.output.dense`, cfg.intermediate, d), cfg.hiddenDropout);
  return layerNorm(ctx, add(out, h1), `${p}.output.LayerNorm`);
}

/** Builds the sequence-classification graph of a BERT/RoBERTa checkpoint. */
export function buildBert(options: BertBuildOptions): ModelGraph {
  const cfg = parseBertConfig(options.config);
  if (options.task !== 'sequence-classification') {
    throw new ModelError('UNSUPPORTED_OPTION', `${cfg.modelType}: task '${options.task}' is not supported (sequence-classification only)`);
  }
  const dtype = options.dtype ?? 'float32';
  const trainAll = options.trainAll === true;
  const { lora, training } = options;
  const seq: Dim = options.seqLen ?? 'seq';
  const maxSeq = bertMaxSeqLen(cfg);
  if (typeof seq === 'number' && (!Number.isInteger(seq) || seq < 1 || seq > maxSeq)) {
    throw new ModelError('UNSUPPORTED_OPTION', `${cfg.modelType}: seqLen ${seq} must be an integer in [1, ${maxSeq}]`);
  }
  const g = new GraphBuilder(cfg.modelType);
  const inputIds = g.input(BERT_INPUTS.inputIds, 'int64', ['batch', seq]);
  const attentionMask = g.input(BERT_INPUTS.attentionMask, 'int64', ['batch', seq]);
  const labels = g.input(BERT_INPUTS.labels, 'int64', ['batch']);
  const loraRate = training && !trainAll ? lora.dropout : 0;
  const anyDropout = training && (loraRate > 0 || cfg.hiddenDropout > 0 || cfg.attentionDropout > 0 || cfg.classifierDropout > 0);
  const seed = anyDropout ? g.input(BERT_INPUTS.dropoutSeed, 'int64', []) : undefined;
  let salt = 0;

  const inputs = new ModelInputs({ graph: g, tensors: options.tensors, dtype, trainAll, modulesToSave: trainAll ? [] : lora.modulesToSave });
  const adapted = adaptedPaths(bertModulePaths(cfg.prefix, cfg.layers), lora, trainAll);
  const ctx: BertContext = {
    cfg,
    inputs,
    proj: (x, path, inF, outF) => {
      const w = inputs.weight(`${path}.weight`, [outF, inF]);
      const b = inputs.weight(`${path}.bias`, [outF]);
      if (!adapted.has(path)) return linear(x, w, b, 'outIn');
      const drop = seed !== undefined && loraRate > 0 ? { rate: loraRate, seed, salt: ++salt } : undefined;
      return loraLinear(x, w, b, 'outIn', inputs.lora(path, inputs.findKey(`${path}.weight`)!, 'linear', inF, outF, lora, drop));
    },
    drop: (x, rate) => (seed === undefined || rate === 0 ? x : dropout(x, { rate, seed, salt: ++salt })),
  };

  let h = embeddings(ctx, inputIds, seq, dtype);
  const mask = unsqueeze(cast(attentionMask, 'bool'), [1, 2]);
  for (let l = 0; l < cfg.layers; l++) h = g.segment(() => encoderLayer(ctx, h, l, mask));
  const logits = classificationHead(ctx, h);
  const loss = crossEntropy(logits, labels);
  return inputs.finish({ graph: g, task: 'sequence-classification', inputIds, attentionMask, labels, logits, loss, dropoutSeed: seed }, bertUnreadAllowances(cfg), (unread) => bertUnreadHint(cfg, unread));
}
