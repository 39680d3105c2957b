/**
 * The sequence-classification heads on the first token's hidden state:
 * - BERT: `bert.pooler.dense` + tanh (frozen or LoRA-adapted, part of the encoder), dropout,
 *   then `classifier` `[num_labels, hidden]`;
 * - RoBERTa: dropout, `classifier.dense` + tanh, dropout, `classifier.out_proj`.
 * The `classifier.*` tensors are always trainable (PEFT's SEQ_CLS modules_to_save), taken from the
 * checkpoint when it has them, else new (normal with `initializer_range`, zero biases).
 */
import type { Value } from '../../graph/builder.js';
import { linear } from '../../graph/nn/linear.js';
import { cast } from '../../graph/ops/cast.js';
import { equal } from '../../graph/ops/logical.js';
import { matMul } from '../../graph/ops/matMul.js';
import { arange } from '../../graph/ops/range.js';
import { squeeze } from '../../graph/ops/squeeze.js';
import { tanh } from '../../graph/ops/tanh.js';
import { unsqueeze } from '../../graph/ops/unsqueeze.js';
import type { BertContext } from './build.js';

/** A trained linear layer of the head: weight `[out, in]` and bias, new when the checkpoint lacks them. */
function headLinear(ctx: BertContext, x: Value, path: string, inF: number, outF: number): Value {
  const w = ctx.inputs.head(`${path}.weight`, [outF, inF], ctx.cfg.initializerRange);
  const b = ctx.inputs.head(`${path}.bias`, [outF], 0);
  return linear(x, w, b, 'outIn');
}

/**
 * `hidden[:, 0]` as a one-hot product `[1, seq]·[batch, seq, d]`: a Slice on the symbolic seq axis
 * would have no gradient rule, and the product costs batch·seq·d.
 */
function firstToken(hidden: Value): Value {
  const oneHot = cast(equal(arange(hidden, hidden.shape[1]), 0), hidden.dtype);
  return squeeze(matMul(unsqueeze(oneHot, 0), hidden), 1);
}

/** Logits `[batch, num_labels]` from the encoder output `[batch, seq, hidden]`. */
export function classificationHead(ctx: BertContext, hidden: Value): Value {
  const { cfg } = ctx;
  const d = cfg.hidden;
  const first = firstToken(hidden);
  if (cfg.prefix === 'roberta') {
    const x = ctx.drop(tanh(headLinear(ctx, ctx.drop(first, cfg.classifierDropout), 'classifier.dense', d, d)), cfg.classifierDropout);
    return headLinear(ctx, x, 'classifier.out_proj', d, cfg.numLabels);
  }
  // A checkpoint without a pooler (saved from a masked-LM model) gets a new, trained one.
  const pooled = ctx.inputs.findKey('bert.pooler.dense.weight') === undefined
    ? tanh(headLinear(ctx, first, 'bert.pooler.dense', d, d))
    : tanh(ctx.proj(first, 'bert.pooler.dense', d, d));
  return headLinear(ctx, ctx.drop(pooled, cfg.classifierDropout), 'classifier', d, cfg.numLabels);
}
