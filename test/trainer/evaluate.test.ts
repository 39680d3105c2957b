// Evaluation metrics against an independent float64 forward pass of the tiny test model
// (fixtures.ts: embedding, Conv1D-layout fc with tanh, Linear-layout out with a residual, tied
// head or mean-pooled score head), with a non-zero adapter so the LoRA path counts: the token-weighted
// mean loss over batches of different sizes, perplexity = exp(loss), classification accuracy; and
// greedy exact match on the shipped model, which must not depend on how prompts are batched.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRng, fillGaussian } from '../../src/core/random.js';
import { encodeDataset } from '../../src/trainer/data/encode.js';
import type { EncodedExample } from '../../src/trainer/data/encode.js';
import { loadSpec } from '../../src/trainer/data/pipeline.js';
import { IGNORE_INDEX } from '../../src/trainer/data/records.js';
import type { PromptCompletionRecord } from '../../src/trainer/data/records.js';
import { generateTask } from '../../src/trainer/data/tasks.js';
import { InProcessTrainer } from '../../src/trainer/inProcessTrainer.js';
import { createTrainer } from '../../src/trainer/loraTrainer.js';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import type { AdapterTensors, LoraTrainer, TrainerSetup } from '../../src/trainer/types.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { taskTokenizer, tinySource, tinyWeights } from './fixtures.js';
import { SHIPPED_MODEL, smallSetup } from './setups.js';

const D = 8;
const H = 12;
const R = 3;
const ALPHA = 6;
const SEQ_LEN = 128;

/** The fixture model in float64: weights, adapter, and forward passes by hand. */
class Reference {
  private readonly s = ALPHA / R;
  constructor(private readonly weights: Map<string, Float32Array>, private readonly adapter: AdapterTensors, private readonly V: number) {}

  private factor(path: string): { a: Float32Array; b: Float32Array } {
    const f = this.adapter.modules.get(path)!;
    return { a: f.a.data, b: f.b.data };
  }

  /** y = x + out(tanh(fc(x))) for one token; fc is x·W0 (W0 in × out), out is h·W0ᵀ (W0 out × in), each plus s·B·A. */
  hidden(id: number): Float64Array {
    const wte = this.weights.get('wte')!;
    const x = Float64Array.from(wte.subarray(id * D, (id + 1) * D));
    const fcW = this.weights.get('fc.weight')!;
    const fc = this.factor('model.fc');
    const ax = new Float64Array(R);
    for (let k = 0; k < R; k++) for (let i = 0; i < D; i++) ax[k] += fc.a[k * D + i] * x[i];
    const h = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      let v = 0;
      for (let i = 0; i < D; i++) v += x[i] * fcW[i * H + j];
      for (let k = 0; k < R; k++) v += this.s * fc.b[j * R + k] * ax[k];
      h[j] = Math.tanh(v);
    }
    const outW = this.weights.get('out.weight')!;
    const out = this.factor('model.out');
    const ah = new Float64Array(R);
    for (let k = 0; k < R; k++) for (let j = 0; j < H; j++) ah[k] += out.a[k * H + j] * h[j];
    const y = new Float64Array(D);
    for (let d = 0; d < D; d++) {
      let v = x[d];
      for (let j = 0; j < H; j++) v += h[j] * outW[d * H + j];
      for (let k = 0; k < R; k++) v += this.s * out.b[d * R + k] * ah[k];
      y[d] = v;
    }
    return y;
  }

  /** −log softmax(logits)[label] and the argmax. */
  static crossEntropy(logits: Float64Array, label: number): { loss: number; argmax: number } {
    let max = -Infinity;
    let argmax = 0;
    logits.forEach((v, i) => {
      if (v > max) [max, argmax] = [v, i];
    });
    let sum = 0;
    for (const v of logits) sum += Math.exp(v - max);
    return { loss: Math.log(sum) + max - logits[label], argmax };
  }

  /** Causal LM: summed loss over the scored (shifted) tokens and their count. */
  lmLoss(examples: readonly EncodedExample[]): { sum: number; count: number } {
    const wte = this.weights.get('wte')!;
    let sum = 0;
    let count = 0;
    for (const e of examples) {
      for (let t = 0; t + 1 < e.inputIds.length; t++) {
        if (e.labels[t + 1] === IGNORE_INDEX) continue;
        const y = this.hidden(e.inputIds[t]);
        const logits = new Float64Array(this.V);
        for (let v = 0; v < this.V; v++) for (let d = 0; d < D; d++) logits[v] += y[d] * wte[v * D + d];
        sum += Reference.crossEntropy(logits, e.labels[t + 1]).loss;
        count++;
      }
    }
    return { sum, count };
  }

  /** Classification: mean-pooled hidden states through the score head; mean loss and accuracy. */
  classify(examples: readonly EncodedExample[]): { loss: number; accuracy: number } {
    const score = this.adapter.saved!.get('score.weight')!;
    const classes = score.length / D;
    let loss = 0;
    let correct = 0;
    for (const e of examples) {
      const pooled = new Float64Array(D);
      for (const id of e.inputIds) this.hidden(id).forEach((v, d) => (pooled[d] += v / e.inputIds.length));
      const logits = new Float64Array(classes);
      for (let c = 0; c < classes; c++) for (let d = 0; d < D; d++) logits[c] += pooled[d] * score[c * D + d];
      const r = Reference.crossEntropy(logits, e.classLabel);
      loss += r.loss;
      if (r.argmax === e.classLabel) correct++;
    }
    return { loss: loss / examples.length, accuracy: correct / examples.length };
  }
}

/** The trainer's initial adapter with every B (zero at init) and the score head drawn at random, so the adapter changes the output. */
function nonZeroAdapter(trainer: LoraTrainer): AdapterTensors {
  const start = trainer.initialAdapter(3);
  const rng = createRng(17);
  for (const f of start.modules.values()) fillGaussian(f.b.data, rng, 0.5);
  for (const v of start.saved?.values() ?? []) fillGaussian(v, rng, 1);
  return start;
}

async function encoded(spec: string): Promise<EncodedExample[]> {
  const dataset = await loadSpec(spec, 5, 'eval');
  return [...encodeDataset(dataset, taskTokenizer(), { seqLen: SEQ_LEN }).examples];
}

describe('evaluate (tiny model, float64 reference)', () => {
  const weights = tinyWeights(taskTokenizer().vocabSize, D, H, 4);
  const lora = defaultLoraSettings({ r: R, alpha: ALPHA });

  /** Runs `body` with an in-process trainer on the tiny model (`weights`) for `data`, seed 5, disposed after. */
  async function withTrainer(data: string, overrides: Partial<TrainerSetup>, body: (trainer: InProcessTrainer) => Promise<void>): Promise<void> {
    const trainer = await InProcessTrainer.create(smallSetup({ data, lora, seqLen: SEQ_LEN, seed: 5, ...overrides }), tinySource({ D, H, weights }));
    try {
      await body(trainer);
    } finally {
      await trainer.dispose();
    }
  }

  test('causal LM: loss is the token-weighted mean over batches of 3, 3 and 1 examples; perplexity = exp(loss); no accuracy', async () => {
    const spec = 'task:arith?count=4&evalCount=7&seed=5';
    await withTrainer(spec, { evalBatchSize: 3 }, async (trainer) => {
      const adapter = nonZeroAdapter(trainer);
      const examples = await encoded(spec);
      const reference = new Reference(weights, adapter, taskTokenizer().vocabSize).lmLoss(examples);

      const result = await trainer.evaluate({ adapter }, { data: spec, exactMatch: false });

      assert.equal(result.examples, 7);
      assert.equal(result.scored, reference.count);
      const expected = reference.sum / reference.count;
      assert.ok(Math.abs(result.loss - expected) < 1e-5 * expected, `loss ${result.loss} vs reference ${expected}`);
      assert.equal(result.perplexity, Math.exp(result.loss));
      assert.equal(result.accuracy, undefined);
      assert.equal(result.exactMatch, undefined);
    });
  });

  test('classification: loss is the mean per example and accuracy the share of argmax hits, as in the reference', async () => {
    const spec = 'task:sentiment?count=4&evalCount=40&seed=5';
    await withTrainer(spec, { evalBatchSize: 16 }, async (trainer) => {
      const adapter = nonZeroAdapter(trainer);
      const examples = await encoded(spec);
      const reference = new Reference(weights, adapter, taskTokenizer().vocabSize).classify(examples);

      const result = await trainer.evaluate({ adapter }, { data: spec });

      assert.equal(result.examples, 40);
      assert.equal(result.scored, 40);
      assert.ok(Math.abs(result.loss - reference.loss) < 1e-5 * reference.loss, `loss ${result.loss} vs reference ${reference.loss}`);
      assert.equal(result.perplexity, Math.exp(result.loss));
      assert.ok(reference.accuracy > 0 && reference.accuracy < 1, `a test that can tell: reference accuracy ${reference.accuracy}`);
      assert.equal(result.accuracy, reference.accuracy);
      assert.equal(result.exactMatch, undefined);
    });
  });

  test('maxExamples takes the first n examples; eval data of another kind is refused naming both kinds', async () => {
    const spec = 'task:sentiment?count=4&evalCount=20&seed=5';
    await withTrainer(spec, {}, async (trainer) => {
      const adapter = nonZeroAdapter(trainer);
      const firstFive = new Reference(weights, adapter, taskTokenizer().vocabSize).classify((await encoded(spec)).slice(0, 5));

      const result = await trainer.evaluate({ adapter }, { data: spec, maxExamples: 5 });

      assert.equal(result.examples, 5);
      assert.ok(Math.abs(result.loss - firstFive.loss) < 1e-5 * firstFive.loss);
      await assert.rejects(trainer.evaluate({ adapter }, { data: 'task:arith?evalCount=4' }), /evaluate: task:arith\?evalCount=4 holds prompt-completion records, the trainer was built for classification data/);
    });
  });
});

describe('evaluate (shipped model): greedy exact match', () => {
  // The shipped model was pretrained on task:arith questions, each followed by eos: asked to finish a
  // held-out question (its last 3 words, ending in " A:"), it often does so exactly, then stops.
  let oneByOne: LoraTrainer;
  let batched: LoraTrainer;
  after(async () => {
    await oneByOne.dispose();
    await batched.dispose();
  });
  const tmp = suiteTempDir('evaluate-em');
  let data: string;
  before(async () => {
    data = join(tmp.path, 'finish-the-question.jsonl');
    const questions = generateTask('task:arith', { split: 'eval', count: 48, seed: 0 }).records as PromptCompletionRecord[];
    await writeFile(data, questions.map((q) => {
      const words = q.prompt.split(' ');
      return JSON.stringify({ prompt: words.slice(0, -3).join(' '), completion: ` ${words.slice(-3).join(' ')}` });
    }).join('\n'));
    const setup = smallSetup({ modelDir: SHIPPED_MODEL, data, evalData: data, lora: defaultLoraSettings(), seqLen: 64, seed: 0 });
    oneByOne = await createTrainer({ ...setup, evalBatchSize: 1 }, { worker: false });
    batched = await createTrainer({ ...setup, evalBatchSize: 16 }, { worker: false });
  });

  test('exact match is the same for prompts decoded one at a time and in padded batches of 16, and strictly between 0.2 and 1', async () => {
    const adapter = oneByOne.initialAdapter(0);

    const single = await oneByOne.evaluate({ adapter }, { data });
    const padded = await batched.evaluate({ adapter }, { data });

    assert.equal(single.examples, 48);
    assert.ok(single.exactMatch !== undefined && single.exactMatch > 0.2 && single.exactMatch < 1, `exact match ${single.exactMatch}`);
    assert.equal(padded.exactMatch, single.exactMatch);
    assert.ok(Math.abs(padded.loss - single.loss) < 1e-4, `loss ${padded.loss} (batched) vs ${single.loss}`);
    assert.equal(single.accuracy, undefined);
  });
});
