// A tiny GPT-2 model folder on disk for the simulation and CLI tests: seeded weights
// (src/model/checkpoints/synthetic.ts) and a byte-level BPE tokenizer trained on task:arith text,
// so the real trainer (onnxruntime) can train and evaluate it in well under a second per step; and
// the workload and run of a tiny federation on it that the simulation tests share.
import { join } from 'node:path';
import { after, before } from 'node:test';
import { createTypeScriptBackend } from '../../../src/core/product.js';
import type { StrategyName } from '../../../src/core/strategies/types.js';
import { NULL_SINK } from '../../../src/federation/events/eventSink.js';
import { createOnnxWorkload, type OnnxWorkloadOptions } from '../../../src/federation/simulation/onnxWorkload.js';
import type { MethodReport } from '../../../src/federation/simulation/report.js';
import { runFederated, type FederatedRunOptions } from '../../../src/federation/simulation/runFederated.js';
import type { SimulationHyperparameters, SimulationWorkload } from '../../../src/federation/simulation/workload.js';
import { writeSyntheticCheckpoint } from '../../../src/model/checkpoints/synthetic.js';
import { createTrainer } from '../../../src/trainer/loraTrainer.js';
import { saveBpeTokenizer, trainByteLevelBpe } from '../../../src/trainer/data/bpeTrainer.js';
import { generateTask } from '../../../src/trainer/data/tasks.js';
import { suiteTempDir } from '../../helpers/tempDir.js';

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

/** The hyperparameters a tiny federation test sets (the simulation's own record). */
export type TinySettings = SimulationHyperparameters;

/** The onnxruntime workload on the tiny GPT-2 in `modelDir`: task:arith (200 records, non-IID), LoRA on c_attn, T = 48, one thread, 16 eval examples. */
export function tinyWorkload(modelDir: string, s: Pick<TinySettings, 'rank' | 'alpha' | 'batchSize' | 'lr' | 'seed'>, extra: Partial<OnnxWorkloadOptions> = {}): Promise<SimulationWorkload> {
  return createOnnxWorkload({
    createTrainer,
    modelDir,
    data: 'task:arith?count=200',
    split: 'non-iid',
    rank: s.rank,
    alpha: s.alpha,
    targetModules: ['c_attn'],
    batchSize: s.batchSize,
    lr: s.lr,
    seed: s.seed,
    seqLen: 48,
    device: 'cpu',
    threads: 1,
    evalExamples: 16,
    exactMatch: false,
    ...extra,
  });
}

/** Runs one method of a tiny federation on TypeScript products: the run in `dir`/runs/`label`, every round's adapters in `dir`/adapters/`label`. */
export function runTinyMethod(dir: string, label: string, method: StrategyName, workload: SimulationWorkload, s: TinySettings, extra: Partial<FederatedRunOptions> = {}): Promise<MethodReport> {
  return runFederated({
    ...s,
    method,
    workload,
    runDir: join(dir, 'runs', label),
    sink: NULL_SINK,
    backend: createTypeScriptBackend(),
    initial: { loss: NaN, accuracy: null, exactMatch: null, examples: 0 },
    saveAdaptersDir: join(dir, 'adapters', label),
    ...extra,
  });
}

/**
 * The tiny federation of the enclosing `describe`: a suite temp folder (`path`, see suiteTempDir) with the tiny GPT-2 in
 * `path`/model, and its workload (tinyWorkload), made before the suite's tests and disposed after them, before the
 * folder is removed. Read `.path` and `.workload` inside hooks and tests.
 */
export function suiteTinyFederation(prefix: string, s: Pick<TinySettings, 'rank' | 'alpha' | 'batchSize' | 'lr' | 'seed'>): { readonly path: string; readonly workload: SimulationWorkload } {
  let workload: SimulationWorkload | undefined;
  after(() => workload?.dispose());
  const tmp = suiteTempDir(prefix);
  before(async () => {
    const modelDir = join(tmp.path, 'model');
    await writeTinyGpt2(modelDir);
    workload = await tinyWorkload(modelDir, s);
  });
  return {
    get path(): string {
      return tmp.path;
    },
    get workload(): SimulationWorkload {
      if (workload === undefined) throw new Error(`suiteTinyFederation('${prefix}'): .workload read before the suite's before() hook made it`);
      return workload;
    },
  };
}
