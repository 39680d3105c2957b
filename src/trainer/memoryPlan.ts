/**
 * Batch sizes that fit in memory. The trainer estimates what one training step holds at a
 * micro-batch of B rows of seqLen tokens, from the very graphs it compiles (src/graph/memory.ts):
 *
 *   estimate(B, T) = inputs(B, T) + train(B, T) + 1.25 · eval(E, T) + host + runtime, where
 *
 * - inputs: the train step's graph inputs — frozen weights, trainable tensors, optimizer state,
 *   the batch tensors — held the whole run (and by the host between runs: the same arrays);
 * - train: the most bytes of the train step's node values alive at once (forward activations the
 *   backward still needs, what the running node makes, the updated parameters and state), counted
 *   over the emitted node order with every symbolic shape evaluated at batch = B, seq = T;
 * - eval: the same peak for the evaluation forward at E rows (the eval batch). Its session keeps
 *   its own onnxruntime arena, which is not given back after a run, so it adds to the training one;
 *   that arena grew by 1.08–1.27 × this count on the 4 × 256 model below ({@link EVAL_ARENA_FACTOR});
 * - host: with gradient accumulation, each micro-batch's gradients and their running sums (2 × the
 *   trainable bytes) in JS;
 * - runtime: Node, onnxruntime and the trainer's own objects, {@link RUNTIME_OVERHEAD_BYTES}.
 *
 * Measured against peak RSS (2-core x86, onnxruntime CPU, 2 threads, under tsx; a process that
 * builds the trainer, trains 2–3 steps of full-length rows, then evaluates 64 rows), estimate /
 * actual was 1.17–1.28:
 *
 * | model | batch × seq | estimate MiB | peak RSS MiB | ratio |
 * |---|---|---:|---:|---:|
 * | shipped models/tiny-gpt2 (3 × 96, vocab 512) | 8 × 64 / 8 × 128 / 32 × 128 | 197 / 236 / 461 | 168 / 202 / 375 | 1.18 / 1.17 / 1.23 |
 * | same, 0.3 GB budget | 64 × 128 as 5 micro-batches of ≤ 13 | 283 | 242 | 1.17 |
 * | random GPT-2 4 × 256, vocab 50257 | 8 × 128 / 16 × 256 / 4 × 512 | 1700 / 6166 / 3227 | 1397 / 5022 / 2658 | 1.22 / 1.23 / 1.21 |
 * | same, 2.5 / 1.2 GB budget | 16 × 256 as 4 × 4 / 32 × 128 as 8 × 4 | 1709 / 962 | 1404 / 804 | 1.22 / 1.20 |
 * | GPT-2-small shapes (12 × 768), LoRA on c_attn | 8 × 128 | 3743 | 2931 | 1.28 |
 *
 * With activation recomputation (`--recompute`), the training peak counted × RECOMPUTE_ARENA_FACTOR:
 *
 * | model | batch × seq | estimate MiB | peak RSS MiB | ratio | kept: estimate / peak RSS |
 * |---|---|---:|---:|---:|---|
 * | random Llama-family 6 × 256 (4 heads, 2 kv), MLP 1024 | 4 × 384 | 415 | 379 | 1.09 | 865 / 720 |
 * | same, 8 layers | 4 × 512 | 530 | 509 | 1.04 | 1486 / 1236 |
 *
 * The peak fell to 53 % and 41 % of the kept run's (test/trainer/recomputeRss.test.ts measures the first row).
 * Training alone (before the evaluation) was 1.19–1.31 × its peak. The estimate is high mostly
 * because onnxruntime fuses nodes and writes some outputs in place: a safe bound, roughly right,
 * not a trace.
 */
import type { Value } from '../graph/builder.js';
import { lowerGraph } from '../graph/lower.js';
import { memoryModel, type MemoryModel } from '../graph/memory.js';
import { buildTrainStep } from '../graph/trainStep.js';
import { scalesInputName } from '../graph/nn/storedWeight.js';
import type { BasePrecision } from '../model/basePrecision.js';
import type { ModelGraph } from '../model/types.js';
import { trainStepOf, type StepSettings } from './compile.js';
import { integerInputs, lowerOptions, type DeviceForm } from './deviceForm.js';
import { formatBytes, memoryBudget, type MemoryBudget, type MemoryProbe } from './memoryBudget.js';
import type { TrainerSetup } from './types.js';

/** Node (~50 MiB), onnxruntime's library and sessions, the trainer's JS: measured 135–150 MiB under tsx. */
export const RUNTIME_OVERHEAD_BYTES = 160 * 2 ** 20;

/** The evaluation arena's growth over its liveness count, rounded up from the 1.08–1.27 measured (module comment). */
export const EVAL_ARENA_FACTOR = 1.25;

/**
 * With activation recomputation the training peak is counted × this. onnxruntime runs the
 * recomputed blocks where the count puts them (its profile shows each block's copies just before
 * that block's backward), but the many short-lived block-sized values grow its arena past their
 * live count: the measured training peak over the counted one was 1.40 and 1.47 (Llama-family,
 * hidden 256, 6 layers at 4 × 384 tokens and 8 layers at 4 × 512; module comment), rounded up.
 */
export const RECOMPUTE_ARENA_FACTOR = 1.6;

/** The train step's inputs (MemoryEstimate.inputBytes) by what they hold. */
export interface InputParts {
  /** Frozen checkpoint weights, as the session holds them (float32, or below: src/model/basePrecision.ts). */
  readonly frozenBytes: number;
  /** The same bytes by the precision each weight is held in (int4: its codes and block scales). */
  readonly frozenByPrecision: Readonly<Partial<Record<BasePrecision, number>>>;
  /** Trainable tensors: LoRA factors and modules_to_save. */
  readonly trainableBytes: number;
  /** Optimizer state: AdamW's m and v (SGD's velocity), one of each per trainable tensor. */
  readonly optimizerBytes: number;
  /** Batch tensors (ids, mask, labels, dropout seed) and the graph's constants (RoPE tables, …). */
  readonly otherBytes: number;
}

/** What one training step holds, in bytes, by part (see the module comment). */
export interface MemoryEstimate {
  readonly microBatch: number;
  readonly seqLen: number;
  readonly evalBatch: number;
  readonly inputBytes: number;
  readonly inputParts: InputParts;
  readonly trainBytes: number;
  readonly evalBytes: number;
  readonly hostBytes: number;
  readonly runtimeBytes: number;
  readonly totalBytes: number;
}

/** Estimates for one model and optimizer at any batch and sequence size. */
export class StepMemoryModel {
  private readonly train: MemoryModel;
  private readonly eval: MemoryModel | undefined;
  private readonly trainableBytes: number;
  /** Frozen inputs (int4: codes and scales) → the precision they hold. */
  private readonly frozen: ReadonlyMap<string, BasePrecision>;
  private readonly trainable: ReadonlySet<string>;
  private readonly recompute: boolean;

  /**
   * `train` must be a graph built for estimating only (the train step is appended to it); `evalModel`
   * (training: false) is only read and may be the one the trainer compiles. Undefined: no evaluation.
   * `form`: the device's (deviceForm.ts); the graphs are counted as that device runs them (lowered).
   */
  constructor(train: ModelGraph, evalModel: ModelGraph | undefined, step: StepSettings, form?: DeviceForm) {
    const built = buildTrainStep(trainStepOf(train, step));
    this.train = formModel(train, built.outputs, form);
    this.eval = evalModel === undefined ? undefined : formModel(evalModel, { loss: evalModel.loss }, form);
    this.trainableBytes = train.trainable.reduce((s, p) => s + 4 * p.shape.reduce<number>((a, d) => a * (d as number), 1), 0);
    this.frozen = frozenPrecisions(train);
    this.trainable = new Set(train.trainable.map((p) => p.name));
    this.recompute = step.recompute === true;
  }

  private parts(sizes: Readonly<Record<string, number>>): InputParts {
    const parts = { frozenBytes: 0, trainableBytes: 0, optimizerBytes: 0, otherBytes: 0 };
    const byPrecision: Partial<Record<BasePrecision, number>> = {};
    for (const [name, bytes] of Object.entries(sizes)) {
      const dot = name.lastIndexOf('.');
      const held = this.frozen.get(name);
      if (held !== undefined) {
        parts.frozenBytes += bytes;
        byPrecision[held] = (byPrecision[held] ?? 0) + bytes;
      } else if (this.trainable.has(name)) parts.trainableBytes += bytes;
      else if (dot > 0 && this.trainable.has(name.slice(0, dot))) parts.optimizerBytes += bytes;
      else parts.otherBytes += bytes;
    }
    return { ...parts, frozenByPrecision: byPrecision };
  }

  /** The estimate at `microBatch` rows of `seqLen` tokens, evaluating `evalBatch` rows; `accumulate`: gradients summed on the host. */
  estimate(microBatch: number, seqLen: number, evalBatch: number, accumulate: boolean): MemoryEstimate {
    const counted = this.train({ batch: microBatch, seq: seqLen });
    const train = this.recompute ? { ...counted, peakBytes: Math.ceil(RECOMPUTE_ARENA_FACTOR * counted.peakBytes) } : counted;
    const evalBytes = this.eval === undefined ? 0 : Math.ceil(EVAL_ARENA_FACTOR * this.eval({ batch: evalBatch, seq: seqLen }).peakBytes);
    const hostBytes = accumulate ? 2 * this.trainableBytes : 0;
    const totalBytes = train.inputBytes + train.peakBytes + evalBytes + hostBytes + RUNTIME_OVERHEAD_BYTES;
    return {
      microBatch,
      seqLen,
      evalBatch,
      inputBytes: train.inputBytes,
      inputParts: this.parts(train.inputSizes),
      trainBytes: train.peakBytes,
      evalBytes,
      hostBytes,
      runtimeBytes: RUNTIME_OVERHEAD_BYTES,
      totalBytes,
    };
  }
}

/**
 * Each frozen input's precision, read from the dtype the graph declares it with (fp16: float16;
 * bf16: its uint16 bits; int4: uint8 codes, with float32 scales beside, `scalesInputName`).
 */
function frozenPrecisions(model: ModelGraph): Map<string, BasePrecision> {
  const map = new Map<string, BasePrecision>();
  const dtypes = new Map(model.graph.inputs.map((v) => [v.name, v.dtype]));
  for (const f of model.frozen) {
    const dtype = dtypes.get(f.input);
    const precision: BasePrecision = dtype === 'float16' ? 'fp16' : dtype === 'uint16' ? 'bf16' : dtype === 'uint8' ? 'int4' : 'fp32';
    map.set(f.input, precision);
    if (precision === 'int4') map.set(scalesInputName(f.input), 'int4');
  }
  return map;
}

/** The memory model of `outputs` of a model's graph as the device's form runs it. */
function formModel(model: ModelGraph, outputs: Readonly<Record<string, Value>>, form: DeviceForm | undefined): MemoryModel {
  const lower = form === undefined ? undefined : lowerOptions(form, integerInputs(model));
  if (lower === undefined) return memoryModel(model.graph, Object.values(outputs));
  const lowered = lowerGraph(model.graph, outputs, lower);
  return memoryModel(lowered.graph, Object.values(lowered.outputs));
}

/** Raised before training when even one row at the requested sequence length does not fit the budget. */
export class MemoryBudgetError extends Error {
  readonly code = 'MEMORY_BUDGET';
  constructor(message: string) {
    super(message);
    this.name = 'MemoryBudgetError';
  }
}

/** The batch sizes a setup asks for. */
export interface BatchRequest {
  /** Rows per batch as the setup gives it. */
  readonly batchSize: number;
  /** Batches per optimizer step as the setup gives it. */
  readonly gradAccumulation: number;
  readonly seqLen: number;
  /** The setup's eval batch; default: the micro-batch run. */
  readonly evalBatchSize?: number;
}

/** How the trainer runs the requested batches (TrainerInfo.memory). */
export interface BatchPlan {
  /** Requested rows per batch. */
  readonly batchSize: number;
  /** Rows per micro-batch actually run (the last one of a batch may have fewer). */
  readonly microBatchSize: number;
  /** Micro-batches each requested batch is split into (1: not split). */
  readonly splits: number;
  /** Micro-batches per optimizer step: the setup's gradAccumulation × splits. The effective batch is unchanged. */
  readonly gradAccumulation: number;
  readonly seqLen: number;
  readonly evalBatchSize: number;
  /** The estimate at microBatchSize. */
  readonly estimate: MemoryEstimate;
  readonly budget: MemoryBudget;
  /** Activation recomputation per block: chosen by `--recompute auto` when one row does not fit without it, or set by the setup. */
  readonly recompute: boolean;
  /** One line saying why and how the batch was split or recomputed; undefined when it was neither. */
  readonly note?: string;
}

/** Activation recomputation (TrainerSetup.recompute, `--recompute`): on, off, or on only when one row does not fit without it. */
export const RECOMPUTE_MODES = ['auto', 'on', 'off'] as const;
export type RecomputeMode = (typeof RECOMPUTE_MODES)[number];

/** `estimate(micro, evalBatch, accumulate)` in bytes at the request's seqLen. */
export type EstimateAt = (microBatch: number, evalBatch: number, accumulate: boolean) => MemoryEstimate;

function describeEstimate(e: MemoryEstimate): string {
  return `weights, adapter and optimizer state ${formatBytes(e.inputBytes)}, training activations ${formatBytes(e.trainBytes)}, `
    + `evaluation ${formatBytes(e.evalBytes)}${e.hostBytes >= 1e6 ? `, summed gradients ${formatBytes(e.hostBytes)}` : ''}, runtime ${formatBytes(e.runtimeBytes)}`;
}

/**
 * The largest micro-batch that fits `budget`; a batch that does not fit whole is split into
 * equal micro-batches (the last may be smaller) and gradAccumulation raised to match, so the
 * optimizer sees the same batches. Throws {@link MemoryBudgetError} when one row does not fit.
 */
export function planBatches(request: BatchRequest, budget: MemoryBudget, estimateAt: EstimateAt, recompute = false): BatchPlan {
  const { batchSize: B, gradAccumulation: k, seqLen } = request;
  const at = (m: number): MemoryEstimate => estimateAt(m, request.evalBatchSize ?? m, k * Math.ceil(B / m) > 1);
  const fits = (m: number): boolean => at(m).totalBytes <= budget.bytes;
  let micro = B;
  if (!fits(B)) {
    if (!fits(1)) {
      const e = at(1);
      throw new MemoryBudgetError(`trainer: one training step at batch 1, seq-len ${seqLen}${recompute ? ', with activation recomputation,' : ''} needs about ${formatBytes(e.totalBytes)} (${describeEstimate(e)}), `
        + `more than the memory budget of ${formatBytes(budget.bytes)} (${budget.source}). Lower the sequence length (--seq-len, seqLen)`
        + `${request.evalBatchSize !== undefined && request.evalBatchSize > 1 ? ' or the eval batch (evalBatchSize)' : ''}, or raise the budget (--memory-budget <GB>, memoryBudgetBytes) if the machine has the memory. `
        + `A smaller --batch-size does not help: batches are already split down to 1 row.`);
    }
    // fits() is monotone in m (every value's size grows with the batch), so bisect [1, B).
    let lo = 1;
    let hi = B - 1;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (fits(mid)) lo = mid;
      else hi = mid - 1;
    }
    micro = lo;
  }
  const splits = Math.ceil(B / micro);
  const size = Math.ceil(B / splits);
  const estimate = at(size);
  const plan = { batchSize: B, microBatchSize: size, splits, gradAccumulation: k * splits, seqLen, evalBatchSize: estimate.evalBatch, estimate, budget, recompute };
  if (splits === 1) return plan;
  const each = B % splits === 0 ? `${size}` : `up to ${size}`;
  const perStep = k === 1 ? '' : ` (${k} batches of ${B}, each in ${splits})`;
  return {
    ...plan,
    note: `batch ${B} does not fit the ${formatBytes(budget.bytes)} budget at seq-len ${seqLen}: running ${k * splits} micro-batches of ${each} per step${perStep}`,
  };
}

/**
 * The plan under a recomputation mode: `auto` plans without recomputation and turns it on only
 * when one row does not fit without it (splitting the batch cannot help then, and recomputing
 * costs about one more forward pass per step); `estimateWith(recompute)` gives the estimates. A
 * model without recomputation segments (GraphBuilder.segment) is planned without, whatever the mode.
 */
export function planWithRecompute(request: BatchRequest, budget: MemoryBudget, mode: RecomputeMode, estimateWith: (recompute: boolean) => EstimateAt, recomputable = true): BatchPlan {
  if (!recomputable) return planBatches(request, budget, estimateWith(false));
  if (mode !== 'auto') {
    try {
      return planBatches(request, budget, estimateWith(mode === 'on'), mode === 'on');
    } catch (err) {
      if (mode === 'off' && err instanceof MemoryBudgetError) {
        throw new MemoryBudgetError(`${err.message} Activation recomputation is off (--recompute off); --recompute auto would turn it on here.`);
      }
      throw err;
    }
  }
  try {
    return planBatches(request, budget, estimateWith(false));
  } catch (err) {
    if (!(err instanceof MemoryBudgetError)) throw err;
    const plan = planBatches(request, budget, estimateWith(true), true);
    const without = estimateWith(false)(1, request.evalBatchSize ?? 1, request.gradAccumulation * request.batchSize > 1);
    const why = `activation recomputation on: one row at seq-len ${request.seqLen} needs about ${formatBytes(without.totalBytes)} keeping every block's activations, `
      + `more than the ${formatBytes(budget.bytes)} budget; the backward pass recomputes each block instead (about one more forward pass per step)`;
    return { ...plan, note: plan.note === undefined ? why : `${why}; ${plan.note}` };
  }
}

/**
 * `estimateWith(recompute)` for planWithRecompute at `seqLen`, each memory model built by
 * `memoryWith` at most once (building one compiles the training graph: seconds at real sizes).
 */
export function estimatesOf(memoryWith: (recompute: boolean) => StepMemoryModel, seqLen: number): (recompute: boolean) => EstimateAt {
  const models = new Map<boolean, StepMemoryModel>();
  return (recompute) => {
    let memory = models.get(recompute);
    if (memory === undefined) models.set(recompute, memory = memoryWith(recompute));
    const built = memory;
    return (micro, evalBatch, accumulate) => built.estimate(micro, seqLen, evalBatch, accumulate);
  };
}

/** Whether the model's graph has recomputation segments (its blocks: GraphBuilder.segment). */
export function hasSegments(model: ModelGraph): boolean {
  return model.graph.nodes.some((n) => n.segment !== undefined);
}

/** The plan of a trainer's setup for `model`: its batches, its budget (or `probe`'s default), the estimates of `memoryWith(recompute)`. */
export function planForSetup(setup: TrainerSetup, model: ModelGraph, memoryWith: (recompute: boolean) => StepMemoryModel, probe: MemoryProbe): BatchPlan {
  return planWithRecompute(
    { batchSize: setup.batchSize, gradAccumulation: setup.gradAccumulation ?? 1, seqLen: setup.seqLen, ...(setup.evalBatchSize !== undefined ? { evalBatchSize: setup.evalBatchSize } : {}) },
    memoryBudget(setup.memoryBudgetBytes, setup.device, probe),
    setup.recompute ?? 'auto',
    estimatesOf(memoryWith, setup.seqLen),
    hasSegments(model),
  );
}
