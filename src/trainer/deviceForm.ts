/**
 * The form the trainer's graphs take on each device (docs/devices.md).
 *
 * - cpu (and cuda, whose provider has every kernel used here): the graphs as built, with symbolic
 *   batch and sequence dims, LogSoftmax as one op (onnxruntime's CPU kernel is one fused pass; the
 *   decomposition would hold two more [tokens, vocab] tensors), int64 batch tensors; batches as long
 *   as their longest example.
 * - webgpu: no CPU islands. onnxruntime's WebGPU provider has no LogSoftmax kernel and no int64
 *   kernels but Gather's indices, and it leaves shape arithmetic (Shape → Concat → Reshape, Range)
 *   to the CPU. So each session is compiled for its fixed batch rows and sequence length (static
 *   shapes: onnxruntime folds the shape arithmetic when it loads the graph), LogSoftmax is
 *   decomposed, the batch tensors are int32 and the dropout hash runs in uint32 (src/graph/lower.ts).
 *   Batches are padded to the fixed size with masked rows and tokens whose labels are ignored, so
 *   losses and gradients are those of the unpadded batch, and dropout masks are computed for the
 *   unpadded sizes ({@link DROPOUT_SIZES}), so they are the CPU's.
 */
import type { LowerOptions } from '../graph/lower.js';
import type { ModelGraph } from '../model/types.js';
import type { Device } from '../runtime/session.js';

/** How one device's sessions are compiled and fed. */
export interface DeviceForm {
  /** Sessions compiled for fixed batch rows and sequence length; every batch is padded to them. */
  readonly fixedShapes: boolean;
  /**
   * Batch tensors (ids, mask, labels, generate rows) fed as int32 and computed on in int32; the
   * dropout seed fed as uint32 (its hash in uint32 arithmetic).
   */
  readonly int32Batch: boolean;
  /** LogSoftmax from primitives. */
  readonly decomposeLogSoftmax: boolean;
}

export const AS_BUILT_FORM: DeviceForm = { fixedShapes: false, int32Batch: false, decomposeLogSoftmax: false };
export const WEBGPU_FORM: DeviceForm = { fixedShapes: true, int32Batch: true, decomposeLogSoftmax: true };

/** The form of a device's graphs (see the module comment). */
export function deviceForm(device: Device): DeviceForm {
  return device === 'webgpu' ? WEBGPU_FORM : AS_BUILT_FORM;
}

/** A graph's integer inputs: the batch tensors, and the dropout seed when the model has dropout. */
export interface IntegerInputs {
  readonly batch: readonly string[];
  readonly dropoutSeed?: string;
}

/** A model's integer inputs, plus `more` batch inputs of a session (the generate session's rows). */
export function integerInputs(model: ModelGraph, ...more: readonly string[]): IntegerInputs {
  return {
    batch: [model.inputIds.name, model.attentionMask.name, model.labels.name, ...more],
    ...(model.dropoutSeed !== undefined ? { dropoutSeed: model.dropoutSeed.name } : {}),
  };
}

/**
 * With fixed shapes and dropout: the uint32 input `[rows, seq]` of the batch before padding, so
 * its dropout masks are those of the unpadded batch (the CPU's).
 */
export const DROPOUT_SIZES = 'dropout_sizes';

/** What lowerGraph does for a form; undefined when nothing. */
export function lowerOptions(form: DeviceForm, inputs: IntegerInputs): LowerOptions | undefined {
  if (!form.int32Batch && !form.decomposeLogSoftmax) return undefined;
  const seeds = form.int32Batch && inputs.dropoutSeed !== undefined ? [inputs.dropoutSeed] : [];
  return {
    decomposeLogSoftmax: form.decomposeLogSoftmax,
    int32Inputs: form.int32Batch ? inputs.batch : [],
    uint32Seeds: seeds,
    ...(seeds.length > 0 && form.fixedShapes ? { dropoutSizes: { input: DROPOUT_SIZES, symbols: ['batch', 'seq'] } } : {}),
  };
}
