// Fixtures for the tests of adapters with per-module ranks, alphas and layers (PEFT rank_pattern,
// alpha_pattern, use_rslora, layers_to_transform): an adapter folder written by hand as PEFT writes it
// (its own JSON and safetensors keys, not src/formats/peft.ts), a tiny Llama folder with the task
// tokenizer, and float64 reference losses (and Llama gradients) over the very examples the trainer
// encodes, from the independent references of test/model (gpt2/fixture.ts, llama/reference.ts).
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { withSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensorsWriter.js';
import type { TensorToWrite } from '../../src/formats/safetensorsWriter.js';
import { writeSyntheticCheckpoint } from '../../src/model/checkpoints/synthetic.js';
import { saveBpeTokenizer } from '../../src/trainer/data/bpeTrainer.js';
import type { EncodedExample } from '../../src/trainer/data/encode.js';
import { prepareData } from '../../src/trainer/data/pipeline.js';
import { openModelSource } from '../../src/trainer/modelFolder.js';
import { uniform } from '../model/llama/harness.js';
import { llamaReference, type RefLlamaConfig } from '../model/llama/reference.js';
import { refCausalLoss, refHidden, refLogits, type TinyConfig } from '../model/gpt2/fixture.js';
import { taskTokenizerFiles } from './fixtures.js';

/** One module of a hand-written adapter: its path, shape, and the rank and scaling PEFT gives it (worked out by the test). */
export interface PatternModule {
  readonly path: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly rank: number;
  readonly scaling: number;
}

/**
 * Seeded factors of a module: A `[r, in]`, B `[out, r]`, uniform in ±`scale` (B non-zero, so the
 * adapter matters), rounded to float32 so that the reference computes with what the file holds.
 */
export function patternFactors(modules: readonly PatternModule[], seed: number, scale = 0.3): Map<string, { a: Float64Array; b: Float64Array }> {
  const stored = (n: number, s: number): Float64Array => Float64Array.from(Float32Array.from(uniform(n, s, -scale, scale)));
  return new Map(modules.map((m, i) => [m.path, { a: stored(m.rank * m.inFeatures, seed + 2 * i), b: stored(m.outFeatures * m.rank, seed + 2 * i + 1) }]));
}

/** Writes `adapter_config.json` (the fields given over PEFT's defaults) and `adapter_model.safetensors` with PEFT's keys, float32. */
export async function writePeftFolderByHand(dir: string, config: Record<string, unknown>, factors: ReadonlyMap<string, { a: Float64Array; b: Float64Array }>, modules: readonly PatternModule[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const json = {
    alpha_pattern: {},
    base_model_name_or_path: null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_dropout: 0,
    modules_to_save: null,
    peft_type: 'LORA',
    rank_pattern: {},
    revision: null,
    task_type: 'CAUSAL_LM',
    use_rslora: false,
    ...config,
  };
  await writeFile(join(dir, 'adapter_config.json'), `${JSON.stringify(json, null, 2)}\n`);
  const tensors = new Map<string, TensorToWrite>();
  for (const m of modules) {
    const f = factors.get(m.path)!;
    tensors.set(`base_model.model.${m.path}.lora_A.weight`, { dtype: 'F32', shape: [m.rank, m.inFeatures], data: Float32Array.from(f.a) });
    tensors.set(`base_model.model.${m.path}.lora_B.weight`, { dtype: 'F32', shape: [m.outFeatures, m.rank], data: Float32Array.from(f.b) });
  }
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
}

/** Every tensor of a safetensors file, as float64. */
export async function readWeights64(file: string): Promise<Map<string, Float64Array>> {
  return withSafetensors(file, async (reader) => {
    const out = new Map<string, Float64Array>();
    for (const name of reader.tensors.keys()) out.set(name, await reader.readFloat64(name));
    return out;
  });
}

/** A 3-layer Llama (hidden 16, 2 heads, 1 key/value head, MLP 24) with the task tokenizer, written into `dir`. */
export async function writeTinyLlamaFolder(dir: string): Promise<RefLlamaConfig> {
  const files = taskTokenizerFiles();
  await writeSyntheticCheckpoint(dir, { family: 'llama', layers: 3, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: files.vocabSize, positions: 64, seed: 7 });
  await saveBpeTokenizer(dir, files);
  return { hidden: 16, layers: 3, heads: 2, kvHeads: 1, intermediate: 24, vocab: files.vocabSize, eps: 1e-6, theta: 10000, tie: false, qkvBias: false };
}

/** The encoded examples the trainer builds from a data file used as both --data and --eval-data (train and eval sets). */
export async function encodedExamples(modelDir: string, data: string, seqLen: number, seed = 0): Promise<{ train: readonly EncodedExample[]; eval: readonly EncodedExample[] }> {
  const source = await openModelSource(modelDir);
  try {
    const prepared = await prepareData({ data, evalData: data, seqLen, seed }, await source.loadTokenizer());
    return { train: prepared.train.examples, eval: prepared.eval.examples };
  } finally {
    await source.close();
  }
}

/** Next tokens scored in one example (HF's shift: labels[t+1] for t < seq − 1, −100 skipped). */
function scored(labels: ArrayLike<number>): number {
  let n = 0;
  for (let t = 1; t < labels.length; t++) if (labels[t] !== -100) n++;
  return n;
}

/** The token-weighted mean causal-LM loss of the examples under GPT-2's float64 reference, each module at its own scaling. */
export function gpt2ReferenceLoss(config: TinyConfig, weights: Map<string, Float64Array>, examples: readonly EncodedExample[], modules: readonly PatternModule[], factors: ReadonlyMap<string, { a: Float64Array; b: Float64Array }>): number {
  const lora = {
    scaling: Number.NaN, // each module has its own
    factors: new Map(modules.map((m) => [m.path, { ...factors.get(m.path)!, r: m.rank, scaling: m.scaling }])),
  };
  let sum = 0;
  let count = 0;
  for (const e of examples) {
    const seq = e.inputIds.length;
    const batch = { batch: 1, seq, ids: Array.from(e.inputIds), mask: new Array<number>(seq).fill(1) };
    const logits = refLogits(config, weights, refHidden(config, weights, batch, lora));
    const n = scored(e.labels);
    sum += n * refCausalLoss(logits, Array.from(e.labels), 1, seq, config.vocab);
    count += n;
  }
  return sum / count;
}

/** The token-weighted mean loss of the examples under the float64 Llama reference, and its gradient for every factor. */
export function llamaReferenceLoss(
  config: RefLlamaConfig,
  weights: Map<string, Float64Array>,
  examples: readonly EncodedExample[],
  modules: readonly PatternModule[],
  factors: ReadonlyMap<string, { a: Float64Array; b: Float64Array }>,
): { loss: number; grads: Map<string, { a: Float64Array; b: Float64Array }> } {
  const lora = { r: Number.NaN, scaling: Number.NaN, factors: new Map(modules.map((m) => [m.path, { ...factors.get(m.path)!, r: m.rank, scaling: m.scaling }])) };
  const grads = new Map(modules.map((m) => [m.path, { a: new Float64Array(m.rank * m.inFeatures), b: new Float64Array(m.outFeatures * m.rank) }]));
  let sum = 0;
  let count = 0;
  for (const e of examples) {
    const n = scored(e.labels);
    const ref = llamaReference(config, weights, lora, [Array.from(e.inputIds)], [new Array<number>(e.inputIds.length).fill(1)], [Array.from(e.labels)]);
    sum += n * ref.loss;
    count += n;
    for (const [path, g] of ref.grads) {
      const acc = grads.get(path)!;
      for (let i = 0; i < g.a.length; i++) acc.a[i] += n * g.a[i];
      for (let i = 0; i < g.b.length; i++) acc.b[i] += n * g.b[i];
    }
  }
  for (const g of grads.values()) {
    for (let i = 0; i < g.a.length; i++) g.a[i] /= count;
    for (let i = 0; i < g.b.length; i++) g.b[i] /= count;
  }
  return { loss: sum / count, grads };
}

/** Arithmetic text records (the task tokenizer's corpus) as a JSONL file: `{"text": "12+7=19"}`. */
export async function writeArithJsonl(file: string, count: number, seed: number): Promise<void> {
  const xs = uniform(2 * count, seed, 0, 50);
  const lines = Array.from({ length: count }, (_, i) => {
    const a = Math.floor(xs[2 * i]);
    const b = Math.floor(xs[2 * i + 1]);
    return JSON.stringify({ text: `${a}+${b}=${a + b}` });
  });
  await writeFile(file, `${lines.join('\n')}\n`);
}
