/** Checks and defaults for a {@link TrainerSetup}; every error names the field and the bad value. */
import { BASE_PRECISIONS } from '../model/basePrecision.js';
import { RECOMPUTE_MODES } from './memoryPlan.js';
import type { LoraSettings } from '../model/types.js';
import { DEVICES } from '../runtime/session.js';
import type { ModelSource } from './modelSource.js';
import { SCHEDULES } from './schedule.js';
import type { TrainerSetup } from './types.js';

/** LoRA settings with FedEx's defaults: r 8, alpha 16 (2·r), no dropout; empty target modules = the architecture's defaults. */
export function defaultLoraSettings(overrides: Partial<LoraSettings> = {}): LoraSettings {
  return { r: 8, alpha: 16, useRslora: false, dropout: 0, targetModules: [], freezeA: false, modulesToSave: [], ...overrides };
}

function positiveInteger(value: number, field: string): void {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`trainer setup: ${field} must be a positive integer, got ${value}`);
}

/** Throws a RangeError naming `where` unless `lr` is a finite number ≥ 0 (the setup's, or one run's own). */
export function checkLearningRate(lr: number, where: string): void {
  if (!(Number.isFinite(lr) && lr >= 0)) throw new RangeError(`${where}: lr must be a finite number ≥ 0, got ${lr}`);
}

/** Throws a RangeError naming the first bad field of `setup`. */
export function checkSetup(setup: TrainerSetup): void {
  if (typeof setup.modelDir !== 'string' || setup.modelDir.length === 0) throw new RangeError('trainer setup: modelDir is empty');
  if (typeof setup.data !== 'string' || setup.data.length === 0) throw new RangeError('trainer setup: data is empty (give task:NAME or a .jsonl path)');
  positiveInteger(setup.batchSize, 'batchSize');
  if (!Number.isInteger(setup.seqLen) || setup.seqLen < 2) throw new RangeError(`trainer setup: seqLen must be an integer ≥ 2, got ${setup.seqLen}`);
  if (!Number.isFinite(setup.seed)) throw new RangeError(`trainer setup: seed must be a finite number, got ${setup.seed}`);
  if (setup.optimizer !== 'adamw' && setup.optimizer !== 'sgd') throw new RangeError(`trainer setup: optimizer must be adamw or sgd, got '${String(setup.optimizer)}'`);
  checkLearningRate(setup.lr, 'trainer setup');
  if (setup.warmupSteps !== undefined && !(Number.isInteger(setup.warmupSteps) && setup.warmupSteps >= 0)) {
    throw new RangeError(`trainer setup: warmupSteps must be a non-negative integer, got ${setup.warmupSteps}`);
  }
  if (setup.schedule !== undefined && !SCHEDULES.includes(setup.schedule)) throw new RangeError(`trainer setup: schedule must be one of ${SCHEDULES.join(', ')}, got '${String(setup.schedule)}'`);
  if (setup.weightDecay !== undefined && !(Number.isFinite(setup.weightDecay) && setup.weightDecay >= 0)) {
    throw new RangeError(`trainer setup: weightDecay must be a finite number ≥ 0, got ${setup.weightDecay}`);
  }
  if (setup.maxGradNorm !== undefined && !(Number.isFinite(setup.maxGradNorm) && setup.maxGradNorm > 0)) {
    throw new RangeError(`trainer setup: maxGradNorm must be a number > 0, got ${setup.maxGradNorm}`);
  }
  if (setup.gradAccumulation !== undefined) positiveInteger(setup.gradAccumulation, 'gradAccumulation');
  if (setup.evalBatchSize !== undefined) positiveInteger(setup.evalBatchSize, 'evalBatchSize');
  if (!DEVICES.includes(setup.device)) throw new RangeError(`trainer setup: device must be one of ${DEVICES.join(', ')}, got '${String(setup.device)}'`);
  if (setup.threads !== undefined) positiveInteger(setup.threads, 'threads');
  if (setup.memoryBudgetBytes !== undefined && !(Number.isFinite(setup.memoryBudgetBytes) && setup.memoryBudgetBytes > 0)) {
    throw new RangeError(`trainer setup: memoryBudgetBytes must be a number of bytes > 0, got ${setup.memoryBudgetBytes}`);
  }
  if (setup.basePrecision !== undefined && !BASE_PRECISIONS.includes(setup.basePrecision)) {
    throw new RangeError(`trainer setup: basePrecision must be one of ${BASE_PRECISIONS.join(', ')}, got '${String(setup.basePrecision)}'`);
  }
  if (setup.basePrecision === 'bf16' && setup.device === 'webgpu') {
    // bf16 travels as uint16 bits widened by BitCast, which onnxruntime's WebGPU provider leaves to the CPU (docs/devices.md).
    throw new RangeError("trainer setup: basePrecision bf16 runs on the CPU only (onnxruntime's WebGPU provider has no BitCast or bfloat16 kernel); on webgpu use fp16 or int4");
  }
  if (setup.recompute !== undefined && !RECOMPUTE_MODES.includes(setup.recompute)) {
    throw new RangeError(`trainer setup: recompute must be one of ${RECOMPUTE_MODES.join(', ')}, got '${String(setup.recompute)}'`);
  }
  const { lora } = setup;
  positiveInteger(lora.r, 'lora.r');
  if (!Number.isFinite(lora.alpha)) throw new RangeError(`trainer setup: lora.alpha must be finite, got ${lora.alpha}`);
  if (!(lora.dropout >= 0 && lora.dropout < 1)) throw new RangeError(`trainer setup: lora.dropout must be in [0, 1), got ${lora.dropout}`);
}

/** Refuses a seqLen beyond the model's position table (onnxruntime would fail mid-run on the first long example). */
export function checkSeqLen(setup: Pick<TrainerSetup, 'seqLen'>, source: Pick<ModelSource, 'name' | 'config' | 'architecture'>): void {
  const max = source.architecture.maxSeqLen?.(source.config);
  if (max !== undefined && setup.seqLen > max.value) {
    throw new RangeError(`trainer setup: seqLen ${setup.seqLen} is longer than the model takes: ${source.name} has ${max.key} = ${max.value} in config.json; lower --seq-len (seqLen) to ${max.value} or less`);
  }
}
