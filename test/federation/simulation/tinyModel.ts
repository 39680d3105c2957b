// A tiny GPT-2 model folder on disk for the simulation and CLI tests: seeded weights
// (src/model/checkpoints/synthetic.ts) and a byte-level BPE tokenizer trained on task:arith text,
// so the real trainer (onnxruntime) can train and evaluate it in well under a second per step.
import { writeSyntheticCheckpoint } from '../../../src/model/checkpoints/synthetic.js';
import { saveBpeTokenizer, trainByteLevelBpe } from '../../../src/trainer/data/bpeTrainer.js';
import { generateTask } from '../../../src/trainer/data/tasks.js';

/** Writes the model folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json). */
export async function writeTinyGpt2(dir: string, options: { layers?: number; hidden?: number; seed?: number } = {}): Promise<void> {
  const records = generateTask('task:arith', { count: 400, seed: 3 }).records as readonly { prompt: string; completion: string }[];
  const tokenizer = trainByteLevelBpe(records.map((r) => r.prompt + r.completion), { vocabSize: 320, splitDigits: true });
  await saveBpeTokenizer(dir, tokenizer);
  await writeSyntheticCheckpoint(dir, {
    family: 'gpt2',
    layers: options.layers ?? 2,
    hidden: options.hidden ?? 32,
    heads: 2,
    vocab: tokenizer.vocabSize,
    positions: 64,
    seed: options.seed ?? 5,
  });
}
