/**
 * Makes the shipped default model `models/tiny-gpt2/` with the project's own code, from nothing:
 *
 * 1. a byte-level BPE tokenizer (src/trainer/data/bpeTrainer.ts, digits split) trained on text of
 *    the built-in synthetic tasks (train splits only): the sentiment and parity sentences, and the
 *    arithmetic questions *without their answers*, so that the model knows the language of the
 *    tasks but answering them is what a federation's LoRA fine-tuning (the main job) teaches it;
 * 2. a randomly initialised GPT-2 (src/model/checkpoints/tinyGpt2.ts, GPT-2's init, no dropout);
 * 3. full-parameter pretraining (TrainerSetup.trainAll) as a plain language model on that text,
 *    packed into rows, AdamW with warm-up and cosine decay, for a fixed number of steps;
 * 4. the trained weights written back as model.safetensors, plus `pretraining.json` (recipe and
 *    figures).
 *
 * Usage: npx tsx scripts/make-default-model.ts [--out models/tiny-gpt2] [--steps 2400] [--threads 2]
 * Deterministic for a fixed thread count (same bytes on the same machine).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeRandomGpt2Checkpoint } from '../src/model/checkpoints/tinyGpt2.js';
import { saveBpeTokenizer, trainByteLevelBpe } from '../src/trainer/data/bpeTrainer.js';
import { generateTask } from '../src/trainer/data/tasks.js';
import type { Dataset, DataRecord } from '../src/trainer/data/records.js';
import { writeFullModel } from '../src/trainer/fullModel.js';
import { InProcessTrainer } from '../src/trainer/inProcessTrainer.js';
import { openModelSource } from '../src/trainer/modelFolder.js';
import { defaultLoraSettings } from '../src/trainer/setup.js';
import type { TrainerSetup } from '../src/trainer/types.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'models/tiny-gpt2' },
    steps: { type: 'string', default: '2400' },
    threads: { type: 'string', default: '2' },
    'n-embd': { type: 'string', default: '96' },
    'n-layer': { type: 'string', default: '3' },
    'n-head': { type: 'string', default: '4' },
    vocab: { type: 'string', default: '512' },
  },
});

const OUT = resolve(values.out);
const STEPS = Number(values.steps);
const THREADS = Number(values.threads);
const SEED = 0;
const SEQ_LEN = 64;
const POSITIONS = 128;
const MODEL = { nEmbd: Number(values['n-embd']), nLayer: Number(values['n-layer']), nHead: Number(values['n-head']) };

/** Every task's text as one LM line: prompt + completion for arithmetic, the sentence for classification. */
function texts(dataset: Dataset): string[] {
  return dataset.records.map((r: DataRecord) => {
    // Questions without their answers: answering is what the federation's fine-tuning teaches.
    if (r.kind === 'prompt-completion') return r.prompt;
    if (r.kind === 'classification' || r.kind === 'text') return r.text;
    throw new Error(`unexpected record kind ${r.kind}`);
  });
}

function corpus(split: 'train' | 'eval', scale: number): string[] {
  return [
    ...texts(generateTask('task:arith', { split, seed: SEED, count: 6000 * scale })),
    ...texts(generateTask('task:sentiment', { split, seed: SEED, count: 1500 * scale })),
    ...texts(generateTask('task:parity', { split, seed: SEED, count: 1500 * scale })),
  ];
}

async function writeJsonl(path: string, lines: readonly string[]): Promise<void> {
  await writeFile(path, lines.map((text) => JSON.stringify({ text })).join('\n') + '\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  await mkdir(OUT, { recursive: true });
  const trainText = corpus('train', 1);
  const tokenizer = trainByteLevelBpe(trainText, { vocabSize: Number(values.vocab), splitDigits: true, modelMaxLength: POSITIONS });
  await saveBpeTokenizer(OUT, tokenizer);
  const eos = tokenizer.specialIds[0];
  await writeRandomGpt2Checkpoint(OUT, { vocabSize: tokenizer.vocabSize, ...MODEL, nPositions: POSITIONS, seed: SEED, dropout: 0, bosTokenId: eos, eosTokenId: eos });

  const tmp = await mkdtemp(join(tmpdir(), 'fedex-pretrain-'));
  try {
    const trainFile = join(tmp, 'train.jsonl');
    const evalFile = join(tmp, 'eval.jsonl');
    await writeJsonl(trainFile, trainText);
    await writeJsonl(evalFile, corpus('eval', 0.1));
    const setup: TrainerSetup = {
      modelDir: OUT, data: trainFile, evalData: evalFile, trainAll: true, packing: true,
      lora: defaultLoraSettings(), batchSize: 16, seqLen: SEQ_LEN, seed: SEED,
      optimizer: 'adamw', lr: 3e-3, weightDecay: 0.01, warmupSteps: Math.round(STEPS / 20), schedule: 'cosine', maxGradNorm: 1,
      device: 'cpu', threads: THREADS, evalBatchSize: 64,
    };
    const source = await openModelSource(OUT);
    const trainer = await InProcessTrainer.create(setup, source);
    const start = trainer.initialAdapter(SEED);
    const before = await trainer.evaluate({ adapter: start });
    console.log(`pretraining ${trainer.info.saved.length} tensors, ${trainer.info.trainExamples} texts, ${STEPS} steps; eval loss before ${before.loss.toFixed(3)}`);
    const result = await trainer.train({ adapter: start }, { steps: STEPS }, {
      onProgress: (p) => {
        if (p.step % 200 === 0 || p.step === p.totalSteps) console.log(`step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(3)} lr ${p.lr.toExponential(2)} ${Math.round(p.tokensPerSecond)} tok/s epoch ${p.epoch}`);
      },
    });
    const after = await trainer.evaluate({ adapter: result.adapter });
    await trainer.dispose();
    await writeFullModel(OUT, result.adapter, trainer.info);
    const params = trainer.info.saved.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    const record = {
      recipe: {
        tokenizer: { kind: 'byte-level BPE (src/trainer/data/bpeTrainer.ts)', vocabSize: tokenizer.vocabSize, splitDigits: true, corpus: 'task:arith 6000 questions (no answers) + task:sentiment 1500 + task:parity 1500 sentences, train splits, seed 0' },
        model: { ...MODEL, nPositions: POSITIONS, vocabSize: tokenizer.vocabSize, dropout: 0, parameters: params, init: 'GPT-2 (src/model/checkpoints/tinyGpt2.ts), seed 0' },
        pretraining: { objective: 'causal LM on every token, texts packed into rows', steps: STEPS, batchSize: setup.batchSize, seqLen: SEQ_LEN, optimizer: 'AdamW', lr: setup.lr, weightDecay: setup.weightDecay, warmupSteps: setup.warmupSteps, schedule: setup.schedule, maxGradNorm: setup.maxGradNorm, threads: THREADS },
      },
      figures: {
        evalLossBefore: before.loss, evalLossAfter: after.loss, evalPerplexityAfter: after.perplexity, trainLoss: result.trainLoss,
        tokens: result.tokens, trainSeconds: result.seconds, tokensPerSecond: result.tokens / result.seconds,
        totalSeconds: (performance.now() - started) / 1000,
      },
    };
    await writeFile(join(OUT, 'pretraining.json'), `${JSON.stringify(record, null, 2)}\n`);
    console.log(`eval loss ${before.loss.toFixed(3)} → ${after.loss.toFixed(3)} (perplexity ${after.perplexity.toFixed(2)}); ${params} parameters; ${record.figures.totalSeconds.toFixed(0)} s in all`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
