/**
 * The graph inputs of a model's tensors, for every architecture: frozen checkpoint weights,
 * trainable ones (`modules_to_save`, or everything with `trainAll`), new heads, and LoRA factors.
 * Architectures ask for tensors by their name in the Hugging Face model class
 * (`transformer.h.0.ln_1.weight`); the stored key may lack or add a wrapper prefix. Each request
 * checks the stored shape against the one the config implies, and records where the input's data
 * comes from (`frozen`, `fullTrainable`, `modules`) for the trainer. A stored tensor that no request
 * read is an error ({@link ModelInputs.checkAllRead}) unless a listed allowance covers it.
 */
import type { Layout } from '../core/lora.js';
import type { GraphBuilder, Value } from '../graph/builder.js';
import type { FloatDType } from '../graph/dtype.js';
import type { LoraAdapter } from '../graph/nn/lora.js';
import { baseKeyCandidates } from '../formats/adapterKeys.js';
import { ModelError } from './errors.js';
import { moduleLora, moduleNames, selectLoraModules } from './targetModules.js';
import type { AdaptedModule, FrozenInput, FullTrainable, LoraSettings, ModelGraph } from './types.js';

export interface ModelInputsOptions {
  readonly graph: GraphBuilder;
  /** Checkpoint keys and shapes as stored. */
  readonly tensors: ReadonlyMap<string, readonly number[]>;
  readonly dtype: FloatDType;
  /** Every checkpoint tensor is trainable. */
  readonly trainAll: boolean;
  /** PEFT `modules_to_save`: tensors of matching modules are trainable. */
  readonly modulesToSave: readonly string[];
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** A checkpoint tensor a model may leave unread, and why: listed by the architecture, never implied. */
export interface UnreadAllowance {
  /** Matched against the stored key. */
  readonly pattern: RegExp;
  /** The keys it covers, for messages (e.g. `*.rotary_emb.inv_freq`). */
  readonly name: string;
  readonly reason: string;
}

/** How many unread keys an error names before it counts the rest. */
const UNREAD_NAMED = 8;

function modulePathOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
}

/** Collects a model's tensor inputs and what the trainer must feed them with. */
export class ModelInputs {
  readonly frozen: FrozenInput[] = [];
  readonly fullTrainable: FullTrainable[] = [];
  readonly modules: AdaptedModule[] = [];
  private readonly loraValues: Value[] = [];
  private readonly fullValues: Value[] = [];
  private readonly byName = new Map<string, Value>();
  private readonly saveMatch: (path: string) => boolean;
  private readonly savedHits = new Set<string>();
  private readonly modulePaths: string[] = [];
  /** Stored keys some request has read. */
  private readonly readKeys = new Set<string>();

  constructor(private readonly options: ModelInputsOptions) {
    this.saveMatch = (path) => options.modulesToSave.some((m) => {
      const hit = path === m || path.endsWith(`.${m}`);
      if (hit) this.savedHits.add(m);
      return hit;
    });
  }

  /** The stored key of a tensor named as in the HF model class, or undefined when the checkpoint lacks it. */
  findKey(name: string): string | undefined {
    const { tensors } = this.options;
    if (tensors.has(name)) return name;
    const dot = name.lastIndexOf('.');
    if (dot <= 0) return undefined;
    return baseKeyCandidates(name.slice(0, dot), name.slice(dot + 1)).find((k) => tensors.has(k));
  }

  /** True when the module at `path` is trained in full (trainAll or modules_to_save). */
  isFull(path: string): boolean {
    return this.options.trainAll || this.saveMatch(path);
  }

  /**
   * A checkpoint tensor as a graph input: frozen, or trainable when trainAll is set or its
   * module is in modules_to_save. Throws TENSOR_NOT_FOUND or TENSOR_SHAPE_MISMATCH naming it.
   */
  weight(name: string, shape: readonly number[]): Value {
    const known = this.byName.get(name);
    if (known !== undefined) return known;
    const key = this.findKey(name);
    if (key === undefined) {
      const all = [...this.options.tensors.keys()];
      const tail = name.split('.').slice(-2).join('.');
      const near = all.filter((k) => k.endsWith(tail)).slice(0, 5);
      const dot = name.lastIndexOf('.');
      const tried = [...new Set([name, ...(dot > 0 ? baseKeyCandidates(name.slice(0, dot), name.slice(dot + 1)) : [])])];
      throw new ModelError('TENSOR_NOT_FOUND',
        `checkpoint has no tensor '${name}' (tried ${tried.map((k) => `'${k}'`).join(', ')}); ` +
          (near.length > 0 ? `close keys: ${near.map((k) => `'${k}'`).join(', ')}` : `it has ${all.length} tensors, e.g. ${all.slice(0, 3).map((k) => `'${k}'`).join(', ')}`));
    }
    const stored = this.options.tensors.get(key)!;
    if (stored.length !== shape.length || stored.some((d, i) => d !== shape[i])) {
      throw new ModelError('TENSOR_SHAPE_MISMATCH', `checkpoint tensor '${key}' has shape ${shapeText(stored)}, the config implies ${shapeText(shape)}`);
    }
    this.modulePaths.push(modulePathOf(name));
    this.readKeys.add(key);
    const value = this.options.graph.input(name, this.options.dtype, shape);
    if (this.isFull(modulePathOf(name))) {
      this.fullTrainable.push({ input: name, name, key, shape: [...shape], initStd: 0 });
      this.fullValues.push(value);
    } else {
      this.frozen.push({ input: name, key, shape: [...shape] });
    }
    this.byName.set(name, value);
    return value;
  }

  /**
   * A trained head (e.g. `score.weight`): from the checkpoint when it holds one of this shape,
   * else new (normal, `initStd`). Always trainable, as PEFT adds task heads to modules_to_save.
   */
  head(name: string, shape: readonly number[], initStd: number): Value {
    const key = this.findKey(name);
    const stored = key === undefined ? undefined : this.options.tensors.get(key)!;
    const fits = stored !== undefined && stored.length === shape.length && stored.every((d, i) => d === shape[i]);
    this.saveMatch(modulePathOf(name));
    this.modulePaths.push(modulePathOf(name));
    if (fits && key !== undefined) this.readKeys.add(key);
    const value = this.options.graph.input(name, this.options.dtype, shape);
    this.fullTrainable.push({ input: name, name, ...(fits ? { key } : {}), shape: [...shape], initStd });
    this.fullValues.push(value);
    this.byName.set(name, value);
    return value;
  }

  /**
   * LoRA factors for the module at `path` (A `[r, in]`, B `[out, r]`, r and the scaling the module's
   * own: rank_pattern, alpha_pattern), recorded as an adapted module; A is trainable unless
   * `lora.freezeA`; with `lora.loraSb` only R `[r, r]` is (A, B frozen). Returns the adapter for nn/lora's loraLinear.
   */
  lora(path: string, baseKey: string, layout: Layout, inFeatures: number, outFeatures: number, lora: LoraSettings, dropout?: LoraAdapter['dropout']): LoraAdapter {
    if (this.saveMatch(path)) {
      throw new ModelError('UNSUPPORTED_OPTION', `module '${path}' is both a LoRA target and in modules_to_save; choose one`);
    }
    const g = this.options.graph;
    const aInput = `${path}.lora_A`;
    const bInput = `${path}.lora_B`;
    const { rank, scaling } = moduleLora(lora, path);
    const a = g.input(aInput, this.options.dtype, [rank, inFeatures]);
    const b = g.input(bInput, this.options.dtype, [outFeatures, rank]);
    if (lora.loraSb === true) {
      // LoRA-SB: A and B are frozen inputs, R between them is the only trainable tensor of the module.
      const rInput = `${path}.lora_R`;
      const r = g.input(rInput, this.options.dtype, [rank, rank]);
      this.loraValues.push(r);
      this.modules.push({ path, baseKey, layout, inFeatures, outFeatures, aInput, bInput, rInput });
      return { a, b, r, scaling, ...(dropout !== undefined ? { dropout } : {}) };
    }
    if (!lora.freezeA) this.loraValues.push(a);
    this.loraValues.push(b);
    this.modules.push({ path, baseKey, layout, inFeatures, outFeatures, aInput, bInput });
    return { a, b, scaling, ...(dropout !== undefined ? { dropout } : {}) };
  }

  /** Trainable inputs in contract order: LoRA factors of every module, then full tensors. */
  trainable(): Value[] {
    return [...this.loraValues, ...this.fullValues];
  }

  /** Stored keys that no `weight` or `head` request read and no allowance covers, in checkpoint order. */
  unreadTensors(allowances: readonly UnreadAllowance[]): string[] {
    return [...this.options.tensors.keys()].filter((k) => !this.readKeys.has(k) && !allowances.some((a) => a.pattern.test(k)));
  }

  /**
   * Throws TENSOR_UNUSED when the checkpoint holds tensors the built model never reads (they would
   * be silently dropped): names them, lists the allowances, and appends `hint(unread)` (e.g. the
   * model_type the tensors suggest). Call after the whole model is built.
   */
  checkAllRead(allowances: readonly UnreadAllowance[], hint?: (unread: readonly string[]) => string | undefined): void {
    const unread = this.unreadTensors(allowances);
    if (unread.length === 0) return;
    const named = unread.slice(0, UNREAD_NAMED).map((k) => `'${k}'`).join(', ');
    const more = unread.length > UNREAD_NAMED ? ` and ${unread.length - UNREAD_NAMED} more` : '';
    const allowed = allowances.length > 0 ? ` (allowed unread: ${allowances.map((a) => `${a.name}, ${a.reason}`).join('; ')})` : '';
    const advice = hint?.(unread);
    throw new ModelError('TENSOR_UNUSED',
      `the checkpoint has ${unread.length} tensor${unread.length === 1 ? '' : 's'} that no part of the built model reads: ${named}${more}; ` +
        `training would silently ignore ${unread.length === 1 ? 'it' : 'them'}${allowed}.${advice !== undefined ? ` ${advice}` : ''}`);
  }

  /**
   * The built model: checks that every modules_to_save entry matched and that every stored tensor
   * was read (`checkModulesToSave`, `checkAllRead`), then adds what the inputs know (trainable,
   * frozen, modules, fullTrainable) to what the family built.
   */
  finish(
    built: Pick<ModelGraph, 'graph' | 'task' | 'inputIds' | 'attentionMask' | 'labels' | 'logits' | 'loss'> & { readonly dropoutSeed: Value | undefined },
    allowances: readonly UnreadAllowance[],
    hint?: (unread: readonly string[]) => string | undefined,
  ): ModelGraph {
    this.checkModulesToSave();
    this.checkAllRead(allowances, hint);
    const { dropoutSeed, ...rest } = built;
    return {
      ...rest,
      trainable: this.trainable(),
      frozen: this.frozen,
      modules: this.modules,
      ...(dropoutSeed !== undefined ? { dropoutSeed } : {}),
      fullTrainable: this.fullTrainable,
    };
  }

  /** Throws MODULE_TO_SAVE_NOT_FOUND for a modules_to_save entry that matched no module. */
  checkModulesToSave(): void {
    if (this.options.trainAll) return;
    const missing = this.options.modulesToSave.filter((m) => !this.savedHits.has(m));
    if (missing.length > 0) {
      throw new ModelError('MODULE_TO_SAVE_NOT_FOUND', `modules_to_save ${missing.map((m) => `'${m}'`).join(', ')} matched no module; module names: ${moduleNames(this.modulePaths).join(', ')}`);
    }
  }
}

/** The module paths among `candidates` that LoRA adapts, with PEFT's rules (target_modules, layers_to_transform); none with trainAll. */
export function adaptedPaths(candidates: readonly string[], lora: LoraSettings, trainAll: boolean): Set<string> {
  return trainAll ? new Set() : new Set(selectLoraModules(candidates, lora));
}
