/**
 * One trainer benchmark case, run in its own process so that its peak RSS is its own.
 * argv[2] is a JSON TrainerCaseArgs; prints one JSON TrainerCaseResult line on stdout.
 *
 * It runs the trainer `fedex train` runs — src/trainer's createTrainer, here on the calling thread
 * (`worker: false`; the worker adds one message per run, not per step) — for `warmup + steps`
 * optimizer steps in one `train()` call, and times every step from the trainer's own progress
 * callbacks (each step: batch feeds, one session run of forward + backward + AdamW, swapping
 * the updated parameters in).
 */
import type { BasePrecision } from '../src/model/basePrecision.js';
import type { Device } from '../src/runtime/session.js';
import type { RecomputeMode } from '../src/trainer/memoryPlan.js';
import { createTrainer } from '../src/trainer/loraTrainer.js';
import { defaultLoraSettings } from '../src/trainer/setup.js';
import type { TrainerSetup } from '../src/trainer/types.js';

export interface TrainerCaseArgs {
  /** Hugging Face model folder. */
  readonly modelDir: string;
  /** Pre-tokenized JSONL (`{"input_ids": […]}` rows of exactly `seqLen` tokens). */
  readonly data: string;
  readonly seqLen: number;
  readonly batchSize: number;
  readonly rank: number;
  readonly alpha: number;
  readonly targetModules: readonly string[];
  readonly warmup: number;
  readonly steps: number;
  readonly threads: number;
  readonly lr: number;
  /** Precision of the frozen base (default fp32; src/model/basePrecision.ts). */
  readonly basePrecision?: BasePrecision;
  /** onnxruntime device (default cpu; bench/gpuTrainer.ts runs webgpu). */
  readonly device?: Device;
  /** Activation recomputation (default: the trainer's, auto; bench/trainer.ts recomputeBench sets on and off). */
  readonly recompute?: RecomputeMode;
  /** The trainer's memory budget (default: its own, 60 % of the available memory). */
  readonly memoryBudgetBytes?: number;
}

export interface TrainerCaseResult {
  /** Milliseconds of each timed step (after warm-up). */
  readonly stepMs: number[];
  /** Milliseconds of each warm-up step (onnxruntime's first runs allocate and touch their memory). */
  readonly warmupMs: number[];
  /** Tokens per step (batch × seqLen, every position real). */
  readonly tokensPerStep: number;
  /** Loss of the first step (the base model's: B starts at zero). */
  readonly firstLoss: number;
  readonly lastLoss: number;
  /** Every step's loss, warm-up included. */
  readonly losses: number[];
  /** Adapted module paths. */
  readonly modules: string[];
  /** Seconds from createTrainer to a ready trainer (graph build, weights, session compile). */
  readonly setupSeconds: number;
  readonly peakRssMiB: number;
  /** Peak RSS when the trainer was built, before the first step: the weights' load alone. */
  readonly setupPeakRssMiB: number;
  /** ‖W − stored(W)‖/‖W‖ of the weights held below float32 (null at fp32). */
  readonly relativeRounding: number | null;
  /** The trainer's plan (trainer.info.memory): recomputing or not, micro-batches per batch, its estimate. */
  readonly recompute: boolean;
  readonly splits: number;
  readonly estimateTotalBytes: number;
  readonly estimateTrainBytes: number;
}

async function main(args: TrainerCaseArgs): Promise<TrainerCaseResult> {
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
    device: args.device ?? 'cpu',
    threads: args.threads,
    ...(args.basePrecision !== undefined ? { basePrecision: args.basePrecision } : {}),
    ...(args.recompute !== undefined ? { recompute: args.recompute } : {}),
    ...(args.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: args.memoryBudgetBytes } : {}),
  };
  const t0 = performance.now();
  const trainer = await createTrainer(setup, { worker: false });
  const setupSeconds = (performance.now() - t0) / 1000;
  const setupPeakRssMiB = process.resourceUsage().maxRSS / 1024;
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
      firstLoss: losses[0],
      lastLoss: losses[losses.length - 1],
      losses,
      modules: trainer.modules.map((m) => m.path),
      setupSeconds,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      setupPeakRssMiB,
      relativeRounding: trainer.info.base.relativeRounding,
      recompute,
      splits,
      estimateTotalBytes: estimate.totalBytes,
      estimateTrainBytes: estimate.trainBytes,
    };
  } finally {
    await trainer.dispose();
  }
}

process.stdout.write(`${JSON.stringify(await main(JSON.parse(process.argv[2]) as TrainerCaseArgs))}\n`);
