/**
 * Compiles a built model (ModelGraph) into the onnxruntime sessions the trainer runs:
 *
 * - `step`: forward, backward, optional global-norm clipping and the optimizer update in one run
 *   (buildTrainStep); used when every optimizer step is one micro-batch;
 * - `grads` + `apply` (gradient accumulation): `grads` returns the loss and the gradients of the
 *   trainable tensors for one micro-batch; the host sums them, weighted by each micro-batch's share
 *   of the step's loss tokens; `apply` clips and updates. `apply` is buildTrainStep over the
 *   pseudo-loss `Σ sum(p ⊙ g)` with the summed gradients `g` as inputs, whose gradient is exactly
 *   `g`: the same clipping and optimizer code as `step`;
 * - `eval`: the loss, and for classification the predicted class (argmax), never the logits;
 * - `generate`: the argmax token at chosen rows of the flattened `[batch·seq]` logits (greedy decoding).
 *
 * Outputs stay small: parameters, their optimizer state, scalars and ids. Each session is compiled
 * in its device's form (deviceForm.ts: on WebGPU lowered and at fixed sizes, given by SessionShape).
 */
import type { GraphBuilder, Value } from '../graph/builder.js';
import { grad } from '../graph/autodiff.js';
import { toOnnxBytes } from '../graph/emit.js';
import { cast } from '../graph/ops/cast.js';
import { gather } from '../graph/ops/gather.js';
import { equal } from '../graph/ops/logical.js';
import { mul } from '../graph/ops/mul.js';
import { neg } from '../graph/ops/neg.js';
import { arange } from '../graph/ops/range.js';
import { reduceMax } from '../graph/ops/reduceMax.js';
import { reduceSum } from '../graph/ops/reduceSum.js';
import { reshape } from '../graph/ops/reshape.js';
import { add } from '../graph/ops/add.js';
import { where } from '../graph/ops/where.js';
import { GraphBuilder as Builder } from '../graph/builder.js';
import { lowerGraph } from '../graph/lower.js';
import { buildTrainStep } from '../graph/trainStep.js';
import type { OptimizerConfig, TrainStepOptions } from '../graph/trainStep.js';
import type { ModelGraph } from '../model/types.js';
import { createSession } from '../runtime/session.js';
import type { Device, OrtLogLevel, OrtSession } from '../runtime/session.js';
import { deviceForm, integerInputs, lowerOptions, type DeviceForm, type IntegerInputs } from './deviceForm.js';

/** Where and how sessions run. */
export interface SessionSettings {
  readonly device: Device;
  /** onnxruntime intra-op threads (default: onnxruntime's, all cores). */
  readonly threads?: number;
  /** onnxruntime's log for the trainer's sessions (`verbose` shows where each node runs); default none. */
  readonly logLevel?: OrtLogLevel;
  /** How the graphs are compiled; default the device's (deviceForm). */
  readonly form?: DeviceForm;
}

/** The optimizer part of a training session. */
export interface StepSettings {
  readonly optimizer: OptimizerConfig;
  readonly maxGradNorm?: number;
  /** Activation recomputation per block (src/graph/autodiff.ts); the memory plan decides it (memoryPlan.ts). */
  readonly recompute?: boolean;
}

/** The train-step options of `model` under `step`. */
export function trainStepOf(model: ModelGraph, step: StepSettings): TrainStepOptions {
  return {
    loss: model.loss,
    params: model.trainable,
    optimizer: step.optimizer,
    ...(step.maxGradNorm !== undefined ? { maxGradNorm: step.maxGradNorm } : {}),
    ...(step.recompute === true ? { recomputeSegments: true } : {}),
  };
}

/** Name of the gradient output of a trainable tensor in the `grads` session and input of `apply`. */
export function gradName(param: string): string {
  return `${param}.grad`;
}

/** Output name of the predicted class / next token. */
export const PREDICTED = 'predicted';
/** Input of the `generate` session: flat row indices (b·seq + t) whose next token is wanted. */
export const ROWS = 'rows';

/**
 * Rows and tokens a session is compiled for. Only a device whose form fixes shapes (deviceForm:
 * webgpu) uses them; the CPU's sessions take any batch.
 */
export interface SessionShape {
  readonly batch: number;
  readonly seq: number;
}

async function session(
  g: GraphBuilder,
  outputs: Record<string, Value>,
  settings: SessionSettings,
  what: string,
  shape?: SessionShape & { readonly rows?: number },
  ints: IntegerInputs = { batch: [] },
): Promise<OrtSession> {
  const form = settings.form ?? deviceForm(settings.device);
  const lower = lowerOptions(form, ints);
  const lowered = lower === undefined ? { graph: g, outputs } : lowerGraph(g, outputs, lower);
  let sizes: Record<string, number> | undefined;
  if (form.fixedShapes) {
    if (shape === undefined) throw new Error(`trainer: the ${what} session on ${settings.device} is compiled for a fixed batch and sequence length; none was given`);
    sizes = { batch: shape.batch, seq: shape.seq, ...(shape.rows !== undefined ? { rows: shape.rows } : {}) };
  }
  const bytes = toOnnxBytes(lowered.graph, { outputs: lowered.outputs, ...(sizes !== undefined ? { sizes } : {}) });
  // Batch and sequence dims are symbolic on the CPU: memory-pattern planning costs more than it saves (bench/trainer.ts).
  // One widened copy of a stored weight per use (src/graph/nn/storedWeight.ts): onnxruntime must not merge them back into one held copy.
  const recomputes = lowered.graph.nodes.some((n) => n.recompute === true);
  return createSession(bytes, {
    device: settings.device,
    memoryPattern: false,
    ...(recomputes ? { disabledOptimizers: ['CommonSubexpressionElimination'] } : {}),
    ...(settings.threads !== undefined ? { intraOpThreads: settings.threads } : {}),
    ...(settings.logLevel !== undefined ? { logLevel: settings.logLevel } : {}),
  });
}

function checkTrainable(model: ModelGraph): void {
  if (model.trainable.length === 0) throw new Error('trainer: the model has no trainable tensors (no LoRA module and nothing to save)');
  for (const p of model.trainable) {
    if (p.dtype !== 'float32') throw new Error(`trainer: trainable tensor ${p.name} is ${p.dtype}; only float32 is trained`);
    if (p.shape.some((d) => typeof d !== 'number')) throw new Error(`trainer: trainable tensor ${p.toString()} must have a static shape`);
  }
}

/** The fused train-step session (forward, backward, clip, update). */
export async function compileStep(model: ModelGraph, step: StepSettings, settings: SessionSettings, shape?: SessionShape): Promise<OrtSession> {
  checkTrainable(model);
  const built = buildTrainStep(trainStepOf(model, step));
  return session(model.graph, built.outputs, settings, 'train step', shape, integerInputs(model));
}

/** The gradient session: `loss` and `<param>.grad` for one micro-batch; `recompute`: activation recomputation per block. */
export async function compileGrads(model: ModelGraph, settings: SessionSettings, shape?: SessionShape, recompute = false): Promise<OrtSession> {
  checkTrainable(model);
  const grads = grad(model.loss, model.trainable, { recomputeSegments: recompute });
  const outputs: Record<string, Value> = { loss: model.loss };
  model.trainable.forEach((p, i) => {
    outputs[gradName(p.name)] = grads[i];
  });
  return session(model.graph, outputs, settings, 'gradient', shape, integerInputs(model));
}

/** The update session: clips the summed gradients `<param>.grad` and applies the optimizer. */
export async function compileApply(params: readonly { name: string; shape: readonly number[] }[], step: StepSettings, settings: SessionSettings): Promise<OrtSession> {
  const g = new Builder('apply');
  const values = params.map((p) => g.input(p.name, 'float32', [...p.shape]));
  const grads = params.map((p) => g.input(gradName(p.name), 'float32', [...p.shape]));
  // d/dp Σ sum(p ⊙ g) = g exactly: the summed gradient passes through the same clip and optimizer code.
  let pseudo: Value | undefined;
  values.forEach((p, i) => {
    const term = reduceSum(mul(p, grads[i]));
    pseudo = pseudo === undefined ? term : add(pseudo, term);
  });
  const built = buildTrainStep({ loss: pseudo!, params: values, optimizer: step.optimizer, ...(step.maxGradNorm !== undefined ? { maxGradNorm: step.maxGradNorm } : {}) });
  const { loss: _unused, ...outputs } = built.outputs;
  // Parameter-shaped only: static already.
  return session(g, outputs, settings, 'update', { batch: 1, seq: 1 });
}

/** Index of the largest value along the last axis (first one on ties), as int64; built from ReduceMax. */
export function argmaxLast(x: Value): Value {
  const classes = x.shape[x.rank - 1];
  const max = reduceMax(x, -1, true);
  const index = cast(arange(x, classes), x.dtype);
  // −index where x is maximal, −classes elsewhere: the largest is −(first maximal index).
  const candidates = where(equal(x, max), neg(index), -(typeof classes === 'number' ? classes : 1e9));
  return cast(neg(reduceMax(candidates, -1)), 'int64');
}

/** The eval session: `loss` (mean over the batch's counted tokens or examples) and, for classification, `predicted` [batch]. */
export async function compileEval(model: ModelGraph, settings: SessionSettings, shape?: SessionShape): Promise<OrtSession> {
  const outputs: Record<string, Value> = { loss: model.loss };
  if (model.task === 'sequence-classification') outputs[PREDICTED] = argmaxLast(model.logits);
  return session(model.graph, outputs, settings, 'eval', shape, integerInputs(model));
}

/**
 * The greedy-decoding session: `predicted` [n], the argmax token at flat rows `rows` [n] of the
 * logits. With fixed shapes, n = the batch rows (pad rows may point anywhere, their token is unused).
 */
export async function compileGenerate(model: ModelGraph, settings: SessionSettings, shape?: SessionShape): Promise<OrtSession> {
  if (model.task !== 'causal-lm') throw new Error(`trainer: greedy decoding needs a causal-lm model, this one is ${model.task}`);
  const g = model.graph;
  const vocab = model.logits.shape[model.logits.rank - 1];
  const rows = g.input(ROWS, 'int64', ['rows']);
  const flat = reshape(model.logits, [-1, vocab]);
  return session(g, { [PREDICTED]: argmaxLast(gather(flat, rows, 0)) }, settings, 'generate', shape === undefined ? undefined : { ...shape, rows: shape.batch }, integerInputs(model, ROWS));
}
