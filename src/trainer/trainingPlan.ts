/**
 * The memory plan of a training setup before anything is loaded: what `fedex train --plan` prints.
 * It reads config.json and the safetensors headers only (no weight, no tokenizer, no session),
 * builds the training and evaluation graphs from the tensor shapes (as the device runs them:
 * deviceForm.ts), and runs the trainer's own planner (memoryPlan.ts) on them: the same estimate and
 * the same micro-batch split the trainer would choose, or the reason nothing fits.
 */
import { itemSize } from '../formats/safetensorsHeader.js';
import { withCheckpoint } from '../model/checkpoint.js';
import { architectureFor } from '../model/registry.js';
import { moduleLora } from '../model/targetModules.js';
import type { ModelTask } from '../model/types.js';
import type { Device } from '../runtime/session.js';
import { loadSpec } from './data/pipeline.js';
import { isTaskSpec } from './data/tasks.js';
import { BASE_PRECISIONS } from '../model/basePrecision.js';
import type { BasePrecision } from '../model/basePrecision.js';
import { deviceForm } from './deviceForm.js';
import { FrozenWeights } from './frozenWeights.js';
import type { BaseStorageSummary } from './frozenWeights.js';
import { stepSettings } from './inProcessTrainer.js';
import { memoryBudget } from './memoryBudget.js';
import type { MemoryBudget, MemoryProbe } from './memoryBudget.js';
import { estimatesOf, hasSegments, MemoryBudgetError, planWithRecompute, StepMemoryModel } from './memoryPlan.js';
import type { BatchPlan, BatchRequest, MemoryEstimate, RecomputeMode } from './memoryPlan.js';
import { checkSeqLen, checkSetup } from './setup.js';
import type { TrainerSetup } from './types.js';

/** A trainer setup whose data is optional (it only decides the task when given). */
export type PlanSetup = Omit<TrainerSetup, 'data'> & { readonly data?: string };

/** Frozen weights of one stored dtype. */
export interface StoredWeights {
  /** safetensors dtype: BF16, F16, F32, … */
  readonly dtype: string;
  readonly parameters: number;
  readonly bytes: number;
}

/** See the module comment. Sizes are bytes. */
export interface TrainingPlan {
  readonly modelDir: string;
  readonly modelType: string;
  readonly task: ModelTask;
  /** The tasks the architecture trains. */
  readonly tasks: readonly ModelTask[];
  /** Where the task came from: the setup, the kind of its data, or the architecture's default. */
  readonly taskFrom: 'setup' | 'data' | 'architecture';
  readonly device: Device;
  /** Adapted modules and their LoRA rank (`r`; with rank_pattern some modules differ: `ranks`). */
  readonly modules: number;
  readonly rank: number;
  /** The distinct ranks of the adapted modules, ascending (one entry without a rank_pattern). */
  readonly ranks: readonly number[];
  /** The frozen weights the graphs read, as stored on disk, by dtype (as the session holds them: `base`, estimate.inputParts.frozenByPrecision). */
  readonly storedWeights: readonly StoredWeights[];
  /** The precision the session holds the frozen weights in (the setup's basePrecision), by precision; relativeRounding is null (no weight is read). */
  readonly base: BaseStorageSummary;
  /** Trainable parameters (LoRA factors and modules_to_save). */
  readonly trainableParameters: number;
  readonly request: BatchRequest;
  readonly budget: MemoryBudget;
  /** How each requested batch runs when it fits; null when one row does not fit the budget. */
  readonly batches: Pick<BatchPlan, 'microBatchSize' | 'splits' | 'gradAccumulation' | 'evalBatchSize' | 'recompute' | 'note'> | null;
  /** The setup's recomputation mode. */
  readonly recompute: RecomputeMode;
  /** Whether `estimate` is with activation recomputation: the planner chose it, or, when nothing fits, it was tried last. */
  readonly recomputed: boolean;
  /** The estimate at the planned micro-batch, or at one row when nothing fits. */
  readonly estimate: MemoryEstimate;
  /** Why nothing fits (the trainer's own message), when batches is null. */
  readonly error?: string;
}

async function taskOf(setup: PlanSetup, tasks: readonly ModelTask[]): Promise<{ task: ModelTask; from: TrainingPlan['taskFrom'] }> {
  if (setup.task !== undefined) return { task: setup.task, from: 'setup' };
  if (setup.data !== undefined) {
    const data = await loadSpec(setup.data, setup.seed, isTaskSpec(setup.data) ? 'train' : undefined);
    return { task: data.kind === 'classification' ? 'sequence-classification' : 'causal-lm', from: 'data' };
  }
  return { task: tasks.includes('causal-lm') ? 'causal-lm' : tasks[0], from: 'architecture' };
}

/** The plan of `setup` (see the module comment); `probe` says what memory is available when the setup gives no budget. */
export async function planTraining(setup: PlanSetup, probe: MemoryProbe): Promise<TrainingPlan> {
  checkSetup({ ...setup, data: setup.data ?? 'none' });
  return withCheckpoint(setup.modelDir, async (checkpoint) => {
    const architecture = architectureFor(checkpoint.config);
    checkSeqLen(setup, { name: setup.modelDir, config: checkpoint.config, architecture });
    const { task, from } = await taskOf(setup, architecture.tasks);
    const lora = { ...setup.lora, targetModules: setup.lora.targetModules.length > 0 ? setup.lora.targetModules : architecture.defaultTargetModules };
    const buildAs = (training: boolean): ReturnType<typeof architecture.build> => architecture.build({ config: checkpoint.config, tensors: checkpoint.tensors, lora, task, training, trainAll: setup.trainAll === true });
    // The frozen weights in the precision the trainer would hold them in (frozenWeights.ts).
    const frozen = FrozenWeights.forSetup(setup);
    const build = (training: boolean): ReturnType<typeof architecture.build> => frozen.store(buildAs(training));
    const model = build(true);
    const evalModel = build(false);
    const estimateWith = estimatesOf((recompute) => new StepMemoryModel(build(true), evalModel, { ...stepSettings(setup), recompute }, setup.form ?? deviceForm(setup.device)), setup.seqLen);

    const stored = new Map<string, StoredWeights>();
    for (const f of model.frozen) {
      const { dtype } = checkpoint.info(f.key);
      const parameters = f.shape.reduce((a, b) => a * b, 1);
      const before = stored.get(dtype) ?? { dtype, parameters: 0, bytes: 0 };
      stored.set(dtype, { dtype, parameters: before.parameters + parameters, bytes: before.bytes + parameters * itemSize(dtype) });
    }
    const request: BatchRequest = {
      batchSize: setup.batchSize,
      gradAccumulation: setup.gradAccumulation ?? 1,
      seqLen: setup.seqLen,
      ...(setup.evalBatchSize !== undefined ? { evalBatchSize: setup.evalBatchSize } : {}),
    };
    const budget = memoryBudget(setup.memoryBudgetBytes, setup.device, probe);
    const mode = setup.recompute ?? 'auto';
    const common = {
      modelDir: setup.modelDir,
      modelType: checkpoint.modelType,
      task,
      tasks: architecture.tasks,
      taskFrom: from,
      device: setup.device,
      modules: model.modules.length,
      rank: lora.r,
      ranks: [...new Set(model.modules.map((m) => moduleLora(lora, m.path).rank))].sort((a, b) => a - b),
      storedWeights: [...stored.values()],
      base: frozen.summary(),
      trainableParameters: model.trainable.reduce((s, p) => s + p.shape.reduce<number>((a, d) => a * (d as number), 1), 0),
      request,
      budget,
      recompute: mode,
    };
    try {
      const plan = planWithRecompute(request, budget, mode, estimateWith, hasSegments(model));
      const { microBatchSize, splits, gradAccumulation, evalBatchSize, recompute, note } = plan;
      return { ...common, batches: { microBatchSize, splits, gradAccumulation, evalBatchSize, recompute, ...(note !== undefined ? { note } : {}) }, recomputed: recompute, estimate: plan.estimate };
    } catch (err) {
      if (!(err instanceof MemoryBudgetError)) throw err;
      const k = request.gradAccumulation;
      const recomputed = mode !== 'off' && hasSegments(model);
      return { ...common, batches: null, recomputed, estimate: estimateWith(recomputed)(1, request.evalBatchSize ?? 1, k * request.batchSize > 1), error: err.message };
    }
  });
}

/** Bytes for people: GB, MB or kB (decimal, the unit of --memory-budget). */
export function formatSize(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** The plan as [what, size] rows (the estimate's parts, then its total and the budget). */
export function planRows(plan: TrainingPlan, optimizer: TrainerSetup['optimizer']): [string, string][] {
  const e = plan.estimate;
  const p = e.inputParts;
  const rows: [string, string][] = plan.storedWeights.map((w) => [`frozen weights on disk, ${w.dtype} (${formatCount(w.parameters)} parameters; not counted below)`, formatSize(w.bytes)]);
  for (const precision of BASE_PRECISIONS) {
    const bytes = p.frozenByPrecision[precision];
    const share = plan.base.held[precision];
    if (bytes === undefined || share === undefined) continue;
    rows.push([`frozen weights held in the session, ${precision} (${formatCount(share.parameters)} parameters${heldNote(plan, precision)})`, formatSize(bytes)]);
  }
  rows.push(
    [`trainable: LoRA r ${plan.ranks.length > 1 ? `${plan.ranks.join('/')} (rank_pattern)` : plan.rank} on ${plan.modules} modules (${formatCount(plan.trainableParameters)} parameters), float32`, formatSize(p.trainableBytes)],
    [`optimizer state (${optimizer === 'adamw' ? 'AdamW m and v' : 'SGD momentum'})`, formatSize(p.optimizerBytes)],
    ['batch tensors and graph constants', formatSize(p.otherBytes)],
    [`training activations, peak (${e.microBatch} rows × ${e.seqLen} tokens${plan.recomputed ? ', blocks recomputed in the backward' : ''})`, formatSize(e.trainBytes)],
    [`evaluation activations (${e.evalBatch} rows)`, formatSize(e.evalBytes)],
  );
  if (e.hostBytes > 0) rows.push(['summed gradients on the host (micro-batches)', formatSize(e.hostBytes)]);
  rows.push(['runtime (Node, onnxruntime, the trainer)', formatSize(e.runtimeBytes)], ['total', formatSize(e.totalBytes)], [`budget: ${plan.budget.source}`, formatSize(plan.budget.bytes)]);
  return rows;
}

/** Why weights are held in float32 under a lower requested precision, for the plan's row. */
function heldNote(plan: TrainingPlan, precision: BasePrecision): string {
  if (precision !== 'fp32' || plan.base.precision === 'fp32') return '';
  const { kept, blocks } = plan.base.float32Matrices;
  const why = ['vectors (norms, biases)'];
  if (kept > 0) why.push(`${kept} adapted bases kept for FedEx residuals`);
  if (blocks > 0) why.push(`${blocks} matrices whose rows are not whole int4 blocks`);
  return `: ${why.join(', ')}`;
}

/** One line: what the planner picks (or why nothing fits). */
export function planVerdict(plan: TrainingPlan): string {
  if (plan.batches === null) return `does not fit: ${plan.error ?? ''}`;
  const { batchSize, gradAccumulation } = plan.request;
  const b = plan.batches;
  if (b.note !== undefined) return `fits ${b.splits > 1 ? 'when split' : 'with activation recomputation'}: ${b.note}`;
  return `fits: batches of ${batchSize} rows × ${plan.request.seqLen} tokens run whole${gradAccumulation > 1 ? `, ${gradAccumulation} per step` : ''}, evaluation in batches of ${b.evalBatchSize}`
    + `${b.recompute ? ', activation recomputation on (--recompute on)' : ''}`;
}
