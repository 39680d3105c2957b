// The shipped default model, models/tiny-gpt2: found by defaultModelDir, loads as a real Hugging
// Face folder (config, byte-level BPE tokenizer, finite weights of the size pretraining.json
// states), and was pretrained: on held-out task:arith text its loss is far below that of the same
// GPT-2 at its random initialisation (the recipe's seed) with the same tokenizer. It was pretrained
// on the questions without their answers, so the answers (task:arith's eval split) gain less.
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { writeRandomGpt2Checkpoint } from '../../src/model/checkpoints/tinyGpt2.js';
import type { PromptCompletionRecord } from '../../src/trainer/data/records.js';
import { generateTask } from '../../src/trainer/data/tasks.js';
import { defaultModelDir } from '../../src/trainer/defaultModel.js';
import { createTrainer } from '../../src/trainer/loraTrainer.js';
import { openModelSource } from '../../src/trainer/modelFolder.js';
import { defaultLoraSettings } from '../../src/trainer/setup.js';
import type { EvalResult } from '../../src/trainer/types.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { SHIPPED_MODEL, smallSetup } from './setups.js';

/** Eval loss of the base model (B = 0) on `data`: all of a JSONL file, or a task's eval split. */
async function baseEval(modelDir: string, data: string): Promise<EvalResult> {
  const trainer = await createTrainer(smallSetup({
    modelDir,
    data,
    evalData: data,
    lora: defaultLoraSettings(),
    batchSize: 32,
    seqLen: 64,
    seed: 0,
    optimizer: 'sgd',
    lr: 0,
  }), { worker: false });
  try {
    return await trainer.evaluate({ adapter: trainer.initialAdapter(0) }, { data, exactMatch: false });
  } finally {
    await trainer.dispose();
  }
}

describe('the shipped model (models/tiny-gpt2)', () => {
  const tmp = suiteTempDir('default-model');

  test('defaultModelDir finds models/tiny-gpt2 of this checkout', () => {
    const dir = defaultModelDir();

    assert.equal(dir, SHIPPED_MODEL);
  });

  test('loads: GPT-2 3 × 96 config, a 512-token BPE tokenizer that round-trips task text, finite weights of the stated size', async () => {
    const recipe = JSON.parse(await readFile(join(SHIPPED_MODEL, 'pretraining.json'), 'utf8')) as { recipe: { model: { parameters: number } } };

    const source = await openModelSource(SHIPPED_MODEL);
    try {
      const tokenizer = await source.loadTokenizer();

      assert.equal(source.config.model_type, 'gpt2');
      assert.equal(source.config.n_layer, 3);
      assert.equal(source.config.n_embd, 96);
      assert.equal(source.config.vocab_size, 512);
      assert.ok(source.architecture.modelTypes.includes('gpt2'));
      assert.ok(tokenizer !== null);
      assert.equal(tokenizer.vocabSize, 512);
      assert.equal(tokenizer.special.eos, 511);
      const text = 'What is 23 plus 19? Answer: 42';
      assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
      let parameters = 0;
      for (const [key, shape] of source.tensors) {
        const data = await source.readFloat32(key);
        assert.equal(data.length, shape.reduce((a, b) => a * b, 1), `${key} size`);
        assert.ok(data.every(Number.isFinite), `${key} is finite`);
        parameters += data.length;
      }
      assert.deepEqual(source.tensors.get('wte.weight') ?? source.tensors.get('transformer.wte.weight'), [512, 96]);
      assert.equal(parameters, recipe.recipe.model.parameters);
    } finally {
      await source.close();
    }
  });

  test('was pretrained: on held-out task:arith questions its loss is < 0.3 × that of its random init (≈ ln 512); on the answers ≥ 0.5 nats lower', async () => {
    const random = join(tmp.path, 'random-init');
    await writeRandomGpt2Checkpoint(random, { vocabSize: 512, nEmbd: 96, nLayer: 3, nHead: 4, nPositions: 128, seed: 0, dropout: 0, bosTokenId: 511, eosTokenId: 511 });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(SHIPPED_MODEL, f), join(random, f));
    const questions = join(tmp.path, 'questions.jsonl');
    const held = generateTask('task:arith', { split: 'eval', count: 64, seed: 0 }).records as PromptCompletionRecord[];
    await writeFile(questions, held.map((r) => JSON.stringify({ text: r.prompt })).join('\n'));
    const answers = 'task:arith?count=8&evalCount=64';

    const shippedText = await baseEval(SHIPPED_MODEL, questions);
    const randomText = await baseEval(random, questions);
    const shippedAnswers = await baseEval(SHIPPED_MODEL, answers);
    const randomAnswers = await baseEval(random, answers);

    assert.equal(shippedText.scored, randomText.scored, 'same tokens scored');
    assert.ok(Math.abs(randomText.loss - Math.log(512)) < 0.5, `random init loss ${randomText.loss}`);
    assert.ok(shippedText.loss < 0.3 * randomText.loss, `questions: shipped ${shippedText.loss} vs random init ${randomText.loss}`);
    assert.ok(shippedAnswers.loss < randomAnswers.loss - 0.5, `answers: shipped ${shippedAnswers.loss} vs random init ${randomAnswers.loss}`);
  });
});
