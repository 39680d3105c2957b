/**
 * One activation-recomputation case of the trainer benchmark (bench/trainer.ts recomputeBench),
 * run in its own process so that its peak RSS is this run's. argv[2] is a JSON RecomputeCaseArgs;
 * prints one JSON RecomputeCaseResult line on stdout.
 *
 * Like bench/trainerCase.ts: createTrainer on the calling thread (`worker: false`), `warmup +
 * steps` optimizer steps in one `train()` call, each step timed from the trainer's progress
 * callbacks; the setup also fixes `recompute` (on or off) and a memory budget large enough that
 * the batch is never split, so both runs train the same micro-batches. No evaluation runs.
 */
import { createTrainer } from '../src/trainer/loraTrainer.js';
import { defaultLoraSettings } from '../src/trainer/setup.js';
import type { TrainerSetup } from '../src/trainer/types.js';
import type { TrainerCaseArgs } from './trainerCase.js';

export interface RecomputeCaseArgs extends TrainerCaseArgs {
  readonly recompute: 'on' | 'off';
  readonly memoryBudgetBytes: number;
}

export interface RecomputeCaseResult {
  /** Milliseconds of each timed step (after warm-up). */
  readonly stepMs: number[];
  /** Milliseconds of each warm-up step. */
  readonly warmupMs: number[];
  readonly tokensPerStep: number;
  /** Every step's loss, warm-up included. */
  readonly losses: number[];
  readonly modules: string[];
  readonly setupSeconds: number;
  /** process.resourceUsage().maxRSS of this process. */
  readonly peakRssMiB: number;
  /** The trainer's plan: recomputing or not, micro-batches per batch, and its estimate (trainer.info.memory). */
  readonly recompute: boolean;
  readonly splits: number;
  readonly estimateTotalBytes: number;
  readonly estimateTrainBytes: number;
}

async function main(args: RecomputeCaseArgs): Promise<RecomputeCaseResult> {
  const setup: TrainerSetup = {
    modelDir: args.modelDir,
    data: args.data,
    evalData: args.data,
    lora: defaultLoraSettings({ r: args.rank, alpha: args.alpha, targetModules: [...args.targetModules] }),
    batchSize: args.batchSize,
    seqLen: args.seqLen,
    seed: 1,
    optimizer: 'adamw',
    lr: args.lr,
    device: 'cpu',
    threads: args.threads,
    recompute: args.recompute,
    memoryBudgetBytes: args.memoryBudgetBytes,
  };
  const t0 = performance.now();
  const trainer = await createTrainer(setup, { worker: false });
  const setupSeconds = (performance.now() - t0) / 1000;
  try {
    const stamps: number[] = [];
    const losses: number[] = [];
    const start = performance.now();
    await trainer.train({ adapter: trainer.initialAdapter(1) }, { steps: args.warmup + args.steps }, { onProgress: (p) => {
      stamps.push(performance.now());
      losses.push(p.loss);
    } });
    const ends = [start, ...stamps];
    const allMs = stamps.map((t, i) => t - ends[i]);
    const { estimate, recompute, splits } = trainer.info.memory;
    return {
      stepMs: allMs.slice(args.warmup),
      warmupMs: allMs.slice(0, args.warmup),
      tokensPerStep: args.batchSize * args.seqLen,
      losses,
      modules: trainer.modules.map((m) => m.path),
      setupSeconds,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      recompute,
      splits,
      estimateTotalBytes: estimate.totalBytes,
      estimateTrainBytes: estimate.trainBytes,
    };
  } finally {
    await trainer.dispose();
  }
}

process.stdout.write(`${JSON.stringify(await main(JSON.parse(process.argv[2]) as RecomputeCaseArgs))}\n`);
