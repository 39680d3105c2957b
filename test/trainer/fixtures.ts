/**
 * A tiny real model for the trainer tests, built with src/graph and implementing the Architecture
 * contract: token embedding (tied head), a Conv1D-layout up-projection `fc` (in × out, tanh) and a
 * Linear-layout down-projection `out` (out × in) with a residual, LoRA on both (non-square), a causal
 * LM loss on shifted labels, or mean pooling + a `score` head (modules_to_save) for classification.
 * Plus an in-memory ModelSource over seeded weights and a BPE tokenizer trained on task text.
 */
import { createRng, fillGaussian } from '../../src/core/random.js';
import type { GraphBuilder, Value } from '../../src/graph/builder.js';
import { GraphBuilder as Builder } from '../../src/graph/builder.js';
import { crossEntropy } from '../../src/graph/nn/crossEntropy.js';
import { dropout } from '../../src/graph/nn/dropout.js';
import { linear } from '../../src/graph/nn/linear.js';
import { add } from '../../src/graph/ops/add.js';
import { cast } from '../../src/graph/ops/cast.js';
import { div } from '../../src/graph/ops/div.js';
import { gather } from '../../src/graph/ops/gather.js';
import { equal } from '../../src/graph/ops/logical.js';
import { mod } from '../../src/graph/ops/mod.js';
import { mul } from '../../src/graph/ops/mul.js';
import { arange } from '../../src/graph/ops/range.js';
import { reduceMax } from '../../src/graph/ops/reduceMax.js';
import { reduceSum } from '../../src/graph/ops/reduceSum.js';
import { tanh } from '../../src/graph/ops/tanh.js';
import { unsqueeze } from '../../src/graph/ops/unsqueeze.js';
import { where } from '../../src/graph/ops/where.js';
import { loraScaling } from '../../src/core/lora.js';
import type { AdaptedModule, Architecture, BuildOptions, FrozenInput, FullTrainable, ModelGraph } from '../../src/model/types.js';
import { saveBpeTokenizer, trainByteLevelBpe } from '../../src/trainer/data/bpeTrainer.js';
import type { BpeTrainResult } from '../../src/trainer/data/bpeTrainer.js';
import { writeSyntheticCheckpoint } from '../../src/model/checkpoints/synthetic.js';
import { generateTask } from '../../src/trainer/data/tasks.js';
import { tokenizerFromJson } from '../../src/trainer/data/tokenizer.js';
import type { TextTokenizer } from '../../src/trainer/data/tokenizer.js';
import type { ModelSource } from '../../src/trainer/modelSource.js';

const MODULES = [
  { name: 'fc', key: 'fc.weight', layout: 'conv1d' as const },
  { name: 'out', key: 'out.weight', layout: 'linear' as const },
];

function dims(config: BuildOptions['config']): { V: number; D: number; H: number; C: number } {
  return { V: config.vocab_size as number, D: config.n_embd as number, H: config.n_inner as number, C: (config.num_labels as number | undefined) ?? 2 };
}

/** The loraLinear of src/graph/nn with the adapter input optionally through dropout. */
function adapted(x: Value, w0: Value, layout: 'inOut' | 'outIn', a: Value, b: Value, scaling: number, drop?: { rate: number; seed: Value; salt: number }): Value {
  const base = linear(x, w0, undefined, layout);
  const input = drop === undefined ? x : dropout(x, drop);
  return add(base, linear(mul(linear(input, a), scaling), b));
}

/** labels[:, t+1] at t, -100 at the last position (the causal shift), from existing ops. */
function shiftLabels(labels: Value): Value {
  const t = arange(labels, labels.shape[1]);
  const last = reduceMax(t);
  const next = mod(add(t, 1), add(last, 1));
  return where(equal(t, last), -100, gather(labels, next, 1));
}

/** The tiny test architecture (model_type `tiny-test`). */
export const tinyArchitecture: Architecture = {
  modelTypes: ['tiny-test'],
  defaultTargetModules: ['fc', 'out'],
  tasks: ['causal-lm', 'sequence-classification'],
  build(options: BuildOptions): ModelGraph {
    const { V, D, H, C } = dims(options.config);
    const g: GraphBuilder = new Builder('tiny');
    const inputIds = g.input('input_ids', 'int64', ['batch', 'seq']);
    const attentionMask = g.input('attention_mask', 'int64', ['batch', 'seq']);
    const labels = options.task === 'causal-lm' ? g.input('labels', 'int64', ['batch', 'seq']) : g.input('labels', 'int64', ['batch']);
    const trainAll = options.trainAll === true;
    const frozen: FrozenInput[] = [];
    const trainable: Value[] = [];
    const fullTrainable: FullTrainable[] = [];
    const weight = (key: string, shape: number[]): Value => {
      const v = g.input(key, 'float32', shape);
      if (trainAll) {
        trainable.push(v);
        fullTrainable.push({ input: key, name: `model.${key}`, key, shape, initStd: 0.02 });
      } else {
        frozen.push({ input: key, key, shape });
      }
      return v;
    };
    const wte = weight('wte', [V, D]);
    const lora = options.lora;
    const scaling = loraScaling(lora.alpha, lora.r, lora.useRslora);
    const seed = !trainAll && options.training && lora.dropout > 0 ? g.input('dropout_seed', 'int64', []) : undefined;
    const modules: AdaptedModule[] = [];
    const targets = lora.targetModules.length > 0 ? lora.targetModules : ['fc', 'out'];
    const layer = (m: (typeof MODULES)[number], x: Value, inF: number, outF: number, salt: number): Value => {
      const w0 = weight(m.key, m.layout === 'conv1d' ? [inF, outF] : [outF, inF]);
      const layout = m.layout === 'conv1d' ? 'inOut' : 'outIn';
      if (trainAll || !targets.includes(m.name)) return linear(x, w0, undefined, layout);
      const path = `model.${m.name}`;
      const a = g.input(`${path}.lora_A`, 'float32', [lora.r, inF]);
      const b = g.input(`${path}.lora_B`, 'float32', [outF, lora.r]);
      if (!lora.freezeA) trainable.push(a);
      trainable.push(b);
      modules.push({ path, baseKey: m.key, layout: m.layout, inFeatures: inF, outFeatures: outF, aInput: a.name, bInput: b.name });
      return adapted(x, w0, layout, a, b, scaling, seed === undefined ? undefined : { rate: lora.dropout, seed, salt: salt + 1 });
    };
    const extras = { fullTrainable, ...(seed !== undefined ? { dropoutSeed: seed } : {}) };
    const x = gather(wte, inputIds);
    const h = tanh(layer(MODULES[0], x, D, H, 0));
    const y = add(x, layer(MODULES[1], h, H, D, 1));
    if (options.task === 'causal-lm') {
      const logits = linear(y, wte);
      return { graph: g, task: 'causal-lm', inputIds, attentionMask, labels, logits, loss: crossEntropy(logits, shiftLabels(labels)), trainable, frozen, modules, ...extras };
    }
    const mask = unsqueeze(cast(attentionMask, 'float32'), 2);
    const pooled = div(reduceSum(mul(y, mask), 1), reduceSum(mask, 1));
    const score = g.input('score.weight', 'float32', [C, D]);
    trainable.push(score);
    fullTrainable.push({ input: score.name, name: 'score.weight', shape: [C, D], initStd: 0.02 });
    const logits = linear(pooled, score);
    return { graph: g, task: 'sequence-classification', inputIds, attentionMask, labels, logits, loss: crossEntropy(logits, labels), trainable, frozen, modules, ...extras };
  },
};

let bpe: BpeTrainResult | null = null;

/** The trained tokenizer files (cached). */
export function taskTokenizerFiles(): BpeTrainResult {
  if (bpe === null) {
    const arith = generateTask('task:arith', { count: 300, seed: 99 }).records.map((r) => (r.kind === 'prompt-completion' ? r.prompt + r.completion : ''));
    const sentiment = generateTask('task:sentiment', { count: 100, seed: 99 }).records.map((r) => (r.kind === 'classification' ? r.text : ''));
    bpe = trainByteLevelBpe([...arith, ...sentiment], { vocabSize: 320, splitDigits: true });
  }
  return bpe;
}

/** A byte-level BPE tokenizer (vocab ≤ 320, digits split) trained on arithmetic and sentiment task text. */
export function taskTokenizer(): TextTokenizer {
  const files = taskTokenizerFiles();
  return tokenizerFromJson(JSON.parse(files.tokenizerJson), JSON.parse(files.tokenizerConfigJson), 'test bpe');
}

/** Writes a random 1-layer GPT-2 (n_embd 16, 2 heads) with the task tokenizer into `dir`: a real model folder. */
export async function writeTinyGpt2Folder(dir: string, options: { layers?: number; hidden?: number; seed?: number } = {}): Promise<void> {
  const files = taskTokenizerFiles();
  await writeSyntheticCheckpoint(dir, { family: 'gpt2', layers: options.layers ?? 1, hidden: options.hidden ?? 16, heads: 2, vocab: files.vocabSize, positions: 128, seed: options.seed ?? 1 });
  await saveBpeTokenizer(dir, files);
}

/** Seeded weights of the tiny model. */
export function tinyWeights(V: number, D: number, H: number, seed = 1): Map<string, Float32Array> {
  const rng = createRng(seed);
  return new Map([
    ['wte', fillGaussian(new Float32Array(V * D), rng, 0.5)],
    ['fc.weight', fillGaussian(new Float32Array(D * H), rng, 1 / Math.sqrt(D))],
    ['out.weight', fillGaussian(new Float32Array(H * D), rng, 1 / Math.sqrt(H))],
  ]);
}

/** An in-memory ModelSource over the tiny architecture. `weights` may replace the seeded ones. */
export function tinySource(options: { D?: number; H?: number; seed?: number; numLabels?: number; weights?: Map<string, Float32Array> } = {}): ModelSource {
  const tokenizer = taskTokenizer();
  const V = tokenizer.vocabSize;
  const D = options.D ?? 8;
  const H = options.H ?? 12;
  const weights = options.weights ?? tinyWeights(V, D, H, options.seed ?? 1);
  const tensors = new Map<string, readonly number[]>([['wte', [V, D]], ['fc.weight', [D, H]], ['out.weight', [D, H]]]);
  return {
    name: 'tiny-test (memory)',
    config: { model_type: 'tiny-test', vocab_size: V, n_embd: D, n_inner: H, num_labels: options.numLabels ?? 2 },
    tensors,
    architecture: tinyArchitecture,
    readFloat32: (key) => {
      const w = weights.get(key);
      if (w === undefined) return Promise.reject(new Error(`tiny source: no tensor ${key}`));
      return Promise.resolve(w);
    },
    loadTokenizer: () => Promise.resolve(tokenizer),
    close: () => Promise.resolve(),
  };
}
