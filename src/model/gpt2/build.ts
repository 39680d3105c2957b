/**
 * GPT-2 as a graph: `GPT2LMHeadModel` (causal LM, lm_head tied to wte) and
 * `GPT2ForSequenceClassification` (`score` head, no bias, on the last non-padding token), with
 * LoRA on the Conv1D modules that `target_modules` selects (PEFT paths
 * `transformer.h.N.attn.c_attn` etc.) and transformers' training-mode dropouts.
 *
 * Inputs: `input_ids`, `attention_mask` (1 = token, 0 = padding), `labels`, `dropout_seed` (when
 * dropout applies), every checkpoint tensor under its HF name (`transformer.h.0.ln_1.weight`),
 * the LoRA factors `<path>.lora_A` / `<path>.lora_B`, and `score.weight` for classification.
 */
import { GraphBuilder } from '../../graph/builder.js';
import type { Value } from '../../graph/builder.js';
import type { FloatDType } from '../../graph/dtype.js';
import { add } from '../../graph/ops/add.js';
import { cast } from '../../graph/ops/cast.js';
import { gather } from '../../graph/ops/gather.js';
import { layerNormalization } from '../../graph/ops/layerNormalization.js';
import { equal, logicalAnd } from '../../graph/ops/logical.js';
import { matMul } from '../../graph/ops/matMul.js';
import { mod } from '../../graph/ops/mod.js';
import { mul } from '../../graph/ops/mul.js';
import { arange } from '../../graph/ops/range.js';
import { reduceMax } from '../../graph/ops/reduceMax.js';
import { squeeze } from '../../graph/ops/squeeze.js';
import { unsqueeze } from '../../graph/ops/unsqueeze.js';
import { where } from '../../graph/ops/where.js';
import { causalMask } from '../../graph/nn/attention.js';
import { crossEntropy } from '../../graph/nn/crossEntropy.js';
import { dropout } from '../../graph/nn/dropout.js';
import { linear } from '../../graph/nn/linear.js';
import type { Dim } from '../../graph/shape.js';
import { ModelError } from '../errors.js';
import type { BuildOptions, ModelGraph } from '../types.js';
import { ModelInputs, adaptedPaths } from '../weights.js';
import { gpt2UnreadAllowances, gpt2UnreadHint } from './unread.js';
import { conv1dProjection, gpt2Block, type BlockContext } from './block.js';
import { parseGpt2Config, type Gpt2Config } from './config.js';

/** Graph input names of the data (the weights are named by their HF names). */
export const GPT2_INPUTS = { inputIds: 'input_ids', attentionMask: 'attention_mask', labels: 'labels', dropoutSeed: 'dropout_seed' } as const;

export interface Gpt2BuildOptions extends BuildOptions {
  /** Float type of the whole graph (default float32; float64 for gradient checks). */
  readonly dtype?: FloatDType;
}

/** PEFT module paths of GPT-2's Conv1D layers, the modules LoRA can adapt. */
export function gpt2ModulePaths(nLayer: number): string[] {
  const out: string[] = [];
  for (let l = 0; l < nLayer; l++) {
    const p = `transformer.h.${l}`;
    out.push(`${p}.attn.c_attn`, `${p}.attn.c_proj`, `${p}.mlp.c_fc`, `${p}.mlp.c_proj`);
  }
  return out;
}

function anyDropout(options: BuildOptions, config: Gpt2Config): boolean {
  if (!options.training) return false;
  const loraDropout = options.trainAll === true ? 0 : options.lora.dropout;
  return loraDropout > 0 || config.embdPdrop > 0 || config.attnPdrop > 0 || config.residPdrop > 0;
}

/**
 * Labels for position t are the next token's: `labels[:, t+1]`, and −100 at the last position
 * and where the next token is padding. Cross-entropy over all positions then equals HF's
 * `logits[:, :-1]` vs `labels[:, 1:]`, without slicing the large logits.
 */
function shiftedLabels(labels: Value, mask: Value, ids: Value, seq: Dim): Value {
  const g = labels.graph;
  const positions = arange(ids, seq);
  const next = mod(add(positions, 1), g.dimsTensor([seq], ids));
  const nextLabels = gather(labels, next, 1);
  const nextIsToken = cast(gather(mask, next, 1), 'bool');
  return where(equal(next, 0), -100, where(nextIsToken, nextLabels, -100));
}

/** Hidden state `[batch, n_embd]` of each row's last non-padding token (the largest position with mask 1). */
function lastTokenState(hidden: Value, mask: Value, ids: Value, seq: Dim): Value {
  const positions = arange(ids, seq);
  const last = reduceMax(mul(mask, positions), 1, true);
  const oneHot = cast(equal(positions, last), hidden.dtype);
  return squeeze(matMul(unsqueeze(oneHot, 1), hidden), 1);
}

/** Builds the GPT-2 graph for a task (see the module comment for inputs and names). */
export function buildGpt2(options: Gpt2BuildOptions): ModelGraph {
  const config = parseGpt2Config(options.config);
  const { nEmbd: d, vocabSize, nPositions } = config;
  const dtype = options.dtype ?? 'float32';
  const trainAll = options.trainAll === true;
  const seq: Dim = options.seqLen ?? 'seq';
  if (typeof seq === 'number' && (!Number.isInteger(seq) || seq < 1 || seq > nPositions)) {
    throw new ModelError('UNSUPPORTED_OPTION', `seqLen ${seq} must be an integer in [1, n_positions = ${nPositions}]`);
  }
  const numLabels = config.numLabels ?? 2;
  if (options.task === 'sequence-classification' && numLabels < 2) {
    throw new ModelError('UNSUPPORTED_OPTION', `sequence classification needs num_labels ≥ 2 (got ${numLabels}; regression is not supported)`);
  }

  const g = new GraphBuilder('gpt2');
  const ids = g.input(GPT2_INPUTS.inputIds, 'int64', ['batch', seq]);
  const mask = g.input(GPT2_INPUTS.attentionMask, 'int64', ['batch', seq]);
  const labels = g.input(GPT2_INPUTS.labels, 'int64', options.task === 'causal-lm' ? ['batch', seq] : ['batch']);
  const seed = anyDropout(options, config) ? g.input(GPT2_INPUTS.dropoutSeed, 'int64', []) : undefined;
  let salt = 0;
  const drop = (x: Value, rate: number): Value => (seed === undefined || rate === 0 ? x : dropout(x, { rate, seed, salt: ++salt }));

  const inputs = new ModelInputs({ graph: g, tensors: options.tensors, dtype, trainAll, modulesToSave: trainAll ? [] : options.lora.modulesToSave });
  const adapted = adaptedPaths(gpt2ModulePaths(config.nLayer), options.lora, trainAll);
  const weight = (name: string, shape: readonly number[]): Value => inputs.weight(name, shape);
  const conv1d = (x: Value, path: string, inFeatures: number, outFeatures: number): Value => {
    const w = weight(`${path}.weight`, [inFeatures, outFeatures]);
    const b = weight(`${path}.bias`, [outFeatures]);
    if (!adapted.has(path)) return conv1dProjection(x, w, b, undefined);
    const loraRate = options.training ? options.lora.dropout : 0;
    const dropoutSpec = seed !== undefined && loraRate > 0 ? { rate: loraRate, seed, salt: ++salt } : undefined;
    return conv1dProjection(x, w, b, inputs.lora(path, inputs.findKey(`${path}.weight`)!, 'conv1d', inFeatures, outFeatures, options.lora, dropoutSpec));
  };

  const wte = weight('transformer.wte.weight', [vocabSize, d]);
  const wpe = weight('transformer.wpe.weight', [nPositions, d]);
  // Position ids 0..seq−1 looked up like HF's wpe(position_ids); a gather (not a slice) keeps wpe's gradient defined for a symbolic seq.
  let h = drop(add(gather(wte, ids), gather(wpe, arange(ids, seq))), config.embdPdrop);
  const attnMask = logicalAnd(unsqueeze(cast(mask, 'bool'), [1, 2]), causalMask(ids, seq));
  const ctx: BlockContext = { config, seq, attnMask, weight, conv1d, dropout: drop };
  // Each block is one recomputation segment (GraphBuilder.segment), as every family's.
  for (let l = 0; l < config.nLayer; l++) h = g.segment(() => gpt2Block(ctx, h, l));
  const hidden = layerNormalization(h, weight('transformer.ln_f.weight', [d]), weight('transformer.ln_f.bias', [d]), { epsilon: config.layerNormEpsilon });

  let logits: Value;
  let loss: Value;
  if (options.task === 'causal-lm') {
    const lmHead = config.tieWordEmbeddings ? wte : weight('lm_head.weight', [vocabSize, d]);
    logits = linear(hidden, lmHead, undefined, 'outIn');
    loss = crossEntropy(logits, shiftedLabels(labels, mask, ids, seq));
  } else {
    const score = inputs.head('score.weight', [numLabels, d], config.initializerRange);
    logits = linear(lastTokenState(hidden, mask, ids, seq), score, undefined, 'outIn');
    loss = crossEntropy(logits, labels);
  }
  return inputs.finish({ graph: g, task: options.task, inputIds: ids, attentionMask: mask, labels, logits, loss, dropoutSeed: seed }, gpt2UnreadAllowances(options.task), (unread) => gpt2UnreadHint(config, unread));
}
