/**
 * The precision the frozen base weights are held in while training (docs/devices.md): `fp32`, or
 * `fp16` / `bf16` (2 bytes a value) or `int4` (4-bit codes in blocks of 64 values of a row with a
 * float32 scale each, as QLoRA's blocks: 4.5 bits a value; rows that are a multiple of 32 but not
 * of 64 use blocks of 32: 5 bits), widened to float32 inside the graph where they are used
 * (src/graph/nn/storedWeight.ts). LoRA factors, their gradients, the optimizer state, activations
 * and the loss stay float32.
 *
 * What is stored below float32: every frozen matrix (rank ≥ 2) for fp16 and bf16; for int4 every
 * frozen matrix whose row length is a multiple of 32 (others stay float32). Vectors (norm weights,
 * biases: well under 1 % of the bytes) stay float32, and so do the weights named in `keepFloat32`
 * (in a federation, the bases that receive FedEx residuals: they need a float32 master).
 */
import { dequantizeInt4, quantizeInt4 } from '../core/int4Blocks.js';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../formats/halfFloat.js';
import { scalesInputName, unstorableReason, type StoredForm } from '../graph/nn/storedWeight.js';
import { storeInputs } from '../graph/storeInputs.js';
import type { FrozenInput, ModelGraph } from './types.js';

export type BasePrecision = 'fp32' | 'fp16' | 'bf16' | 'int4';
export const BASE_PRECISIONS: readonly BasePrecision[] = ['fp32', 'fp16', 'bf16', 'int4'];

/** Columns per int4 block, in order of preference (one float32 scale each). */
export const INT4_BLOCK_SIZES: readonly number[] = [64, 32];

/** The int4 block of a matrix with rows of `cols` values: the largest of INT4_BLOCK_SIZES that divides it, or undefined. */
export function int4BlockSize(shape: readonly number[]): number | undefined {
  return shape.length === 2 ? INT4_BLOCK_SIZES.find((b) => shape[1] % b === 0) : undefined;
}

/** Bytes a weight of `shape` takes held in `precision` (int4: its codes and block scales). */
export function heldBytes(shape: readonly number[], precision: BasePrecision): number {
  const n = shape.reduce((a, b) => a * b, 1);
  if (precision !== 'int4') return n * (precision === 'fp32' ? 4 : 2);
  const block = int4BlockSize(shape);
  if (block === undefined) throw new RangeError(`int4: a weight of shape [${shape.join(', ')}] has no whole blocks of ${INT4_BLOCK_SIZES.join(' or ')}`);
  return n / 2 + 4 * (n / block);
}

/** The stored form of a weight of `shape` in a precision below float32; undefined when it cannot take it (int4 without whole blocks). */
export function storedForm(precision: Exclude<BasePrecision, 'fp32'>, shape: readonly number[]): StoredForm | undefined {
  if (precision !== 'int4') return { kind: precision === 'fp16' ? 'float16' : 'bfloat16' };
  const blockSize = int4BlockSize(shape);
  return blockSize === undefined ? undefined : { kind: 'int4', blockSize };
}

/** How one frozen graph input is held. */
export interface FrozenStorage extends FrozenInput {
  readonly precision: BasePrecision;
  /** int4: the graph input of its block scales. */
  readonly scalesInput?: string;
  /** Why it stays float32 under a lower requested precision. */
  readonly float32Reason?: 'vector' | 'kept' | 'blocks';
}

/** The precision of each frozen input under `precision` (see the module comment). */
export function frozenStorage(frozen: readonly FrozenInput[], precision: BasePrecision, keepFloat32: ReadonlySet<string> = new Set()): FrozenStorage[] {
  return frozen.map((f): FrozenStorage => {
    if (precision === 'fp32') return { ...f, precision };
    if (f.shape.length < 2) return { ...f, precision: 'fp32', float32Reason: 'vector' };
    if (keepFloat32.has(f.key)) return { ...f, precision: 'fp32', float32Reason: 'kept' };
    const form = storedForm(precision, f.shape);
    if (form === undefined || unstorableReason(f.shape, form) !== undefined) return { ...f, precision: 'fp32', float32Reason: 'blocks' };
    return { ...f, precision, ...(precision === 'int4' ? { scalesInput: scalesInputName(f.input) } : {}) };
  });
}

/** A model graph whose frozen inputs are held as `storage` says. */
export interface StoredModelGraph {
  readonly model: ModelGraph;
  readonly storage: readonly FrozenStorage[];
}

/**
 * `model` rewritten so its frozen inputs are held as `storage` says (src/graph/storeInputs.ts);
 * the same model when all are float32. Build the train step or eval outputs on the result.
 */
export function storeFrozen(model: ModelGraph, storage: readonly FrozenStorage[]): StoredModelGraph {
  const forms = new Map<string, StoredForm>();
  for (const s of storage) {
    if (s.precision === 'fp32') continue;
    const form = storedForm(s.precision, s.shape);
    if (form === undefined) throw new RangeError(`storeFrozen: ${s.input} [${s.shape.join(', ')}] cannot be held in ${s.precision}`);
    forms.set(s.input, form);
  }
  if (forms.size === 0) return { model, storage };
  const stored = storeInputs(model.graph, forms);
  const v = stored.value;
  return {
    storage,
    model: {
      ...model,
      graph: stored.graph,
      inputIds: v(model.inputIds),
      attentionMask: v(model.attentionMask),
      labels: v(model.labels),
      logits: v(model.logits),
      loss: v(model.loss),
      trainable: model.trainable.map(v),
      ...(model.dropoutSeed !== undefined ? { dropoutSeed: v(model.dropoutSeed) } : {}),
    },
  };
}

/** What the session is fed for one frozen input: its data (and int4 scales) in the input's dtype. */
export type StoredData =
  | { readonly precision: 'fp32'; readonly data: Float32Array }
  | { readonly precision: 'fp16' | 'bf16'; readonly data: Uint16Array }
  | { readonly precision: 'int4'; readonly data: Uint8Array; readonly scales: Float32Array };

/** float32 values of `shape` in `precision` (rounded to nearest even, or block-quantised); `name` for errors. */
export function toStored(values: Float32Array, shape: readonly number[], precision: BasePrecision, name: string): StoredData {
  switch (precision) {
    case 'fp32':
      return { precision, data: values };
    case 'fp16':
      return { precision, data: float32ToFloat16(values) };
    case 'bf16':
      return { precision, data: float32ToBfloat16(values) };
    case 'int4': {
      const block = int4BlockSize(shape);
      if (block === undefined) throw new RangeError(`int4: ${name} has shape [${shape.join(', ')}]; only matrices whose rows are whole blocks of ${INT4_BLOCK_SIZES.join(' or ')} are block-quantised`);
      try {
        const q = quantizeInt4(values, shape[0], shape[1], block);
        return { precision, data: q.codes, scales: q.scales };
      } catch (err) {
        throw new RangeError(`int4: ${name}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}

/** How far stored values are from the float32 ones they stand for: Σ(w − ŵ)² and Σw² (float64). */
export interface RoundingSums {
  readonly errSq: number;
  readonly normSq: number;
}

/**
 * The rounding of `values` stored as `stored` (see {@link RoundingSums}); throws naming the tensor
 * when a finite value became infinite (beyond fp16's 65504) rather than feed it silently.
 */
export function roundingOf(values: Float32Array, stored: StoredData, shape: readonly number[], name: string): RoundingSums {
  if (stored.precision === 'fp32') return { errSq: 0, normSq: 0 };
  const back = fromStored(stored, shape);
  let errSq = 0;
  let normSq = 0;
  for (let i = 0; i < values.length; i++) {
    const w = values[i];
    const v = back[i];
    if (Number.isFinite(w) && !Number.isFinite(v)) {
      throw new RangeError(`${stored.precision}: ${name} holds ${w} (index ${i}), beyond the range of ${stored.precision}; hold this model's base in bf16 or fp32 (--base-precision)`);
    }
    if (!Number.isFinite(w)) continue;
    errSq += (w - v) * (w - v);
    normSq += w * w;
  }
  return { errSq, normSq };
}

/** The float32 values stored data stands for (exact: every stored value is a float32 value). */
export function fromStored(stored: StoredData, shape: readonly number[]): Float32Array {
  switch (stored.precision) {
    case 'fp32':
      return stored.data;
    case 'fp16':
      return float16ToFloat32(stored.data);
    case 'bf16':
      return bfloat16ToFloat32(stored.data);
    case 'int4': {
      const blockSize = (shape[0] * shape[1]) / stored.scales.length;
      return dequantizeInt4({ rows: shape[0], cols: shape[1], blockSize, codes: stored.data, scales: stored.scales }, new Float32Array(shape[0] * shape[1])) as Float32Array;
    }
  }
}
