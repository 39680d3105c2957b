/**
 * A trainer's frozen base weights in the precision it holds them in (src/model/basePrecision.ts,
 * docs/devices.md): which graph inputs are stored how, the graphs rewritten to widen them where
 * they are used, the session feeds (loaded once, shared by every session), the rounding they carry,
 * and FedEx's base overrides, which replace float32 bases only.
 *
 * A weight whose checkpoint dtype is the precision held (F16 for fp16, BF16 for bf16) is fed as
 * its stored bytes, never widened on the host; others are read as float32 and rounded (fp16, bf16:
 * to nearest even) or block-quantised (int4) once, when the trainer loads them.
 */
import { BASE_PRECISIONS, frozenStorage, heldBytes, roundingOf, storeFrozen, toStored } from '../model/basePrecision.js';
import type { BasePrecision, FrozenStorage, StoredData } from '../model/basePrecision.js';
import type { AdaptedModule, ModelGraph } from '../model/types.js';
import { ortTensor } from '../runtime/session.js';
import type { OrtTensor } from '../runtime/session.js';
import type { ModelSource } from './modelSource.js';
import type { TrainerSetup } from './types.js';

/** Parameters and bytes of frozen weights held in one precision. */
export interface PrecisionShare {
  readonly parameters: number;
  readonly bytes: number;
}

/** How a trainer holds its frozen base weights (TrainerInfo.base). */
export interface BaseStorageSummary {
  /** The precision asked for (TrainerSetup.basePrecision). */
  readonly precision: BasePrecision;
  /** The frozen weights by the precision each is held in. */
  readonly held: Partial<Record<BasePrecision, PrecisionShare>>;
  /** Matrices held in float32 although a lower precision was asked for: bases kept for FedEx residuals, and (int4) rows not a whole number of blocks. */
  readonly float32Matrices: { readonly kept: number; readonly blocks: number };
  /**
   * ‖W − stored(W)‖_F / ‖W‖_F over the weights held below float32, once loaded (0 when every one
   * was fed as stored in the checkpoint); null before loading or when none is.
   */
  readonly relativeRounding: number | null;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The safetensors dtype whose bytes a precision's session input takes as they are. */
const SAME_STORED: Partial<Record<BasePrecision, string>> = { fp16: 'F16', bf16: 'BF16' };

/** See the module comment. One per trainer: the train and eval graphs share its feeds. */
export class FrozenWeights {
  private readonly storage = new Map<string, FrozenStorage>();
  private readonly loaded: Record<string, OrtTensor> = {};
  private errSq = 0;
  private normSq = 0;
  private lowLoaded = 0;

  private constructor(readonly precision: BasePrecision, private readonly keepAdaptedFloat32: boolean) {}

  /** The setup's precision; with `float32AdaptedBases` the bases of the adapted modules stay float32. */
  static forSetup(setup: Pick<TrainerSetup, 'basePrecision' | 'float32AdaptedBases'>): FrozenWeights {
    const precision = setup.basePrecision ?? 'fp32';
    if (!BASE_PRECISIONS.includes(precision)) throw new RangeError(`trainer setup: basePrecision must be one of ${BASE_PRECISIONS.join(', ')}, got '${String(precision)}'`);
    return new FrozenWeights(precision, precision !== 'fp32' && setup.float32AdaptedBases === true);
  }

  /** `model` with its frozen inputs held in this precision (the same model at fp32); its adapted modules' bases kept float32 when asked. */
  store(model: ModelGraph): ModelGraph {
    const keep = this.keepAdaptedFloat32 ? new Set(model.modules.map((m) => m.baseKey)) : undefined;
    const storage = frozenStorage(model.frozen, this.precision, keep);
    for (const s of storage) this.storage.set(s.input, s);
    return storeFrozen(model, storage).model;
  }

  private storageOf(input: string): FrozenStorage {
    const s = this.storage.get(input);
    if (s === undefined) throw new Error(`trainer: frozen input ${input} was not stored through FrozenWeights.store`);
    return s;
  }

  /** Reads every frozen weight of `model` not read yet, in its precision. */
  async load(model: ModelGraph, source: ModelSource): Promise<void> {
    for (const f of model.frozen) {
      if (f.input in this.loaded) continue;
      const s = this.storageOf(f.input);
      const same = SAME_STORED[s.precision];
      const raw = same !== undefined && source.readStored !== undefined ? await source.readStored(f.key) : undefined;
      if (raw !== undefined && raw.dtype === same) {
        if (raw.bytes.byteLength !== 2 * numel(f.shape)) throw new Error(`trainer: ${source.name}: tensor ${f.key} has ${raw.bytes.byteLength} bytes, the graph input ${f.input} [${f.shape.join(', ')}] needs ${2 * numel(f.shape)}`);
        const bits = raw.bytes.byteOffset % 2 === 0 ? new Uint16Array(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.byteLength / 2) : new Uint16Array(raw.bytes.slice().buffer);
        this.feed(s, { precision: s.precision as 'fp16' | 'bf16', data: bits });
        this.lowLoaded++;
        continue;
      }
      const data = await source.readFloat32(f.key);
      if (data.length !== numel(f.shape)) throw new Error(`trainer: ${source.name}: tensor ${f.key} has ${data.length} values, the graph input ${f.input} [${f.shape.join(', ')}] needs ${numel(f.shape)}`);
      const stored = toStored(data, f.shape, s.precision, f.key);
      if (stored.precision !== 'fp32') {
        const r = roundingOf(data, stored, f.shape, f.key);
        this.errSq += r.errSq;
        this.normSq += r.normSq;
        this.lowLoaded++;
      }
      this.feed(s, stored);
    }
  }

  private feed(s: FrozenStorage, stored: StoredData): void {
    switch (stored.precision) {
      case 'fp32':
        this.loaded[s.input] = ortTensor('float32', stored.data, s.shape);
        break;
      case 'fp16':
        this.loaded[s.input] = ortTensor('float16', stored.data, s.shape);
        break;
      case 'bf16':
        this.loaded[s.input] = ortTensor('uint16', stored.data, s.shape);
        break;
      case 'int4':
        this.loaded[s.input] = ortTensor('uint8', stored.data, [s.shape[0], s.shape[1] / 2]);
        this.loaded[s.scalesInput!] = ortTensor('float32', stored.scales, [s.shape[0], stored.scales.length / s.shape[0]]);
        break;
    }
  }

  /** The feeds of every loaded frozen input. */
  get feeds(): Readonly<Record<string, OrtTensor>> {
    return this.loaded;
  }

  /**
   * The feeds with the bases of `overrides` (module path → float32 W0 in stored layout) in place
   * of the checkpoint's, for the frozen inputs of `model`. A base held below float32 cannot take
   * one: the error says to keep adapted bases float32 (TrainerSetup.float32AdaptedBases).
   */
  withOverrides(overrides: ReadonlyMap<string, Float32Array> | undefined, model: ModelGraph, modules: readonly AdaptedModule[]): Record<string, OrtTensor> {
    if (overrides === undefined || overrides.size === 0) return this.loaded;
    const feeds = { ...this.loaded };
    for (const [path, data] of overrides) {
      const m = modules.find((x) => x.path === path);
      if (m === undefined) throw new Error(`trainer: baseOverrides names module '${path}', which is not adapted (adapted: ${modules.map((x) => x.path).join(', ')})`);
      const inputs = model.frozen.filter((f) => f.key === m.baseKey);
      if (inputs.length === 0) throw new Error(`trainer: the base weight ${m.baseKey} of module '${path}' is not a frozen graph input`);
      for (const f of inputs) {
        if (data.length !== numel(f.shape)) throw new Error(`trainer: baseOverrides['${path}'] has ${data.length} values, W0 ${m.baseKey} [${f.shape.join(', ')}] needs ${numel(f.shape)}`);
        const held = this.storageOf(f.input).precision;
        if (held !== 'fp32') {
          throw new Error(`trainer: baseOverrides replace the base of module '${path}', which is held in ${held} (basePrecision ${this.precision}); `
            + 'a base that changes during a run must stay float32: set float32AdaptedBases (fedex join and simulate do)');
        }
        feeds[f.input] = ortTensor('float32', data, f.shape);
      }
    }
    return feeds;
  }

  /** What is held how (see {@link BaseStorageSummary}). */
  summary(): BaseStorageSummary {
    const held: Partial<Record<BasePrecision, PrecisionShare>> = {};
    const float32Matrices = { kept: 0, blocks: 0 };
    for (const s of this.storage.values()) {
      const parameters = numel(s.shape);
      const before = held[s.precision] ?? { parameters: 0, bytes: 0 };
      held[s.precision] = { parameters: before.parameters + parameters, bytes: before.bytes + heldBytes(s.shape, s.precision) };
      if (s.float32Reason === 'kept') float32Matrices.kept++;
      if (s.float32Reason === 'blocks') float32Matrices.blocks++;
    }
    const relativeRounding = this.lowLoaded === 0 ? null : this.normSq > 0 ? Math.sqrt(this.errSq / this.normSq) : 0;
    return { precision: this.precision, held, float32Matrices, relativeRounding };
  }
}

/** One line for people: what is held in which precision and the rounding it carries; null at fp32. */
export function describeBaseStorage(base: BaseStorageSummary): string | null {
  if (base.precision === 'fp32') return null;
  const parts = BASE_PRECISIONS.flatMap((p) => {
    const share = base.held[p];
    return share === undefined ? [] : [`${p} ${(share.bytes / 1e6).toFixed(1)} MB (${share.parameters} parameters)`];
  });
  const kept = base.float32Matrices.kept > 0 ? `; ${base.float32Matrices.kept} adapted bases kept float32 for FedEx residuals` : '';
  const blocks = base.float32Matrices.blocks > 0 ? `; ${base.float32Matrices.blocks} matrices kept float32 (rows not whole int4 blocks)` : '';
  const rounding = base.relativeRounding === null ? '' : `; relative rounding of the stored weights ‖W − stored(W)‖/‖W‖ = ${base.relativeRounding.toExponential(2)}`;
  return `frozen base held in ${base.precision}: ${parts.join(', ')}${kept}${blocks}${rounding}`;
}
