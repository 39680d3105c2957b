/**
 * PEFT LoRA adapter folders (`adapter_config.json` + `adapter_model.safetensors`), read and
 * written so that a folder written here loads unchanged with `PeftModel.from_pretrained`.
 *
 * Tensor keys are `base_model.model.<module path>.lora_A.weight` (r × in) and `.lora_B.weight`
 * (out × r), without the adapter name; other tensors (modules_to_save, trained biases) are
 * `base_model.model.<path>` and are carried as `extraTensors`.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Matrix, Tensor } from '../core/tensor.js';
import { FormatError } from './errors.js';
import { writeFileAtomic } from './atomicFile.js';
import type { SafetensorsDType } from './safetensorsHeader.js';
import { createSafetensorsWriter } from './safetensorsWriter.js';
import type { SafetensorsEntry } from './safetensorsWriter.js';
import { isTargetModule, loraConfig, patternKey, serializeLoraConfig } from './peftConfig.js';
import type { LoraConfig } from './peftConfig.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, PEFT_KEY_PREFIX as PREFIX, adapterTensorKey, checkFinite, openPeftAdapterIndex } from './peftIndex.js';
import type { LoraModule } from './peftIndex.js';

export { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, adapterTensorKey, readLoraConfig } from './peftIndex.js';
export type { LoraModule } from './peftIndex.js';

/** An adapter folder as read. */
export interface PeftAdapter {
  readonly dir: string;
  readonly config: LoraConfig;
  /** In file order. */
  readonly modules: readonly LoraModule[];
  /** Non-LoRA tensors (modules_to_save weights, trained biases) by path without `base_model.model.`. */
  readonly extraTensors: ReadonlyMap<string, Tensor<Float32Array>>;
  /** Dtype the LoRA factors were stored in. */
  readonly dtype: SafetensorsDType;
}

/**
 * Reads a PEFT LoRA adapter folder whole: config, every module's A (r × in) and B (out × r) as
 * float32 with its rank, alpha and scaling, and any extra tensors. Checks as `openPeftAdapterIndex`
 * does (partners, ranks against each other and the config, targets) and that values are finite
 * (unless `allowNonFinite`). For a whole model's adapters prefer the index, one module at a time.
 */
export async function readPeftAdapter(dir: string, options: { allowNonFinite?: boolean } = {}): Promise<PeftAdapter> {
  const index = await openPeftAdapterIndex(dir, options);
  try {
    const modules: LoraModule[] = [];
    for (const m of index.modules) modules.push(await index.readModule(m.modulePath));
    const extraTensors = new Map<string, Tensor<Float32Array>>();
    for (const key of index.extraKeys) extraTensors.set(key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key, await index.readExtra(key));
    return { dir, config: index.config, modules, extraTensors, dtype: index.dtype };
  } finally {
    await index.close();
  }
}

/**
 * An adapter to write, its modules and extra tensors described by their values (`PeftAdapterInput`)
 * or, to be written later, by their shapes (`PeftAdapterPlan`).
 */
interface AdapterToWrite<Module, Extra> {
  /** Config fields; r and target_modules are derived from the modules when absent. */
  readonly config: Partial<LoraConfig> & { readonly loraAlpha: number };
  readonly modules: readonly Module[];
  /** Extra tensors by path without `base_model.model.`. */
  readonly extraTensors?: ReadonlyMap<string, Extra>;
}

/** A module of an adapter to write. `alpha` defaults to the config's loraAlpha. */
interface ModuleToWrite {
  readonly modulePath: string;
  readonly alpha?: number;
}

/** A module to write, with its factors. */
export interface LoraModuleInput extends ModuleToWrite {
  readonly A: Matrix;
  readonly B: Matrix;
}

/** What to write, values and all ({@link writePeftAdapter}). */
export type PeftAdapterInput = AdapterToWrite<LoraModuleInput, Tensor>;

/** The most frequent value (the first seen among ties): an adapter's `r` when modules differ in rank. */
export function mostCommon(values: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].reduce((best, e) => (e[1] > best[1] ? e : best))[0];
}

/**
 * The shortest dotted suffix of `path`, starting at a name, that PEFT's pattern rule matches against
 * this path and no other module path (a proper suffix, so PEFT releases that require a dot before
 * the key agree).
 */
function uniquePatternKey(path: string, all: readonly string[]): string {
  const parts = path.split('.');
  for (let k = 1; k < parts.length; k++) {
    // A key that starts at a layer index ('1.attn.c_attn') is legal but reads badly; start at a name.
    if (/^\d+$/.test(parts[parts.length - k])) continue;
    const key = parts.slice(-k).join('.');
    if (all.every((p) => p === path || patternKey({ [key]: 1 }, p) === undefined)) return key;
  }
  return path;
}

/** A module of an adapter to be written: its shape, values later. */
export interface LoraModulePlan extends ModuleToWrite {
  readonly rank: number;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** An adapter to be written module by module, extra tensors by their shapes (see {@link createPeftAdapterWriter}). */
export type PeftAdapterPlan = AdapterToWrite<LoraModulePlan, { readonly shape: readonly number[] }>;

/**
 * The adapter_config.json a plan would write, checked as the writer checks it (every module matched
 * by target_modules, ranks and alphas expressible), without writing anything: call it before a long
 * run so a config PEFT could not load fails at the start, not after the last round.
 */
export function checkPeftAdapterPlan(plan: PeftAdapterPlan, dir: string): LoraConfig {
  return resolveConfig(plan, dir, false);
}

/** Config as it will be written: derived r and target_modules, rank/alpha patterns for the exceptions. */
function resolveConfig(input: PeftAdapterPlan, dir: string, exactTargets: boolean): LoraConfig {
  const paths = input.modules.map((m) => m.modulePath);
  const ranks = input.modules.map((m) => m.rank);
  const targets = input.config.targetModules ?? (exactTargets ? [...paths] : [...new Set(paths.map((p) => p.slice(p.lastIndexOf('.') + 1)))].sort());
  const base = loraConfig({ ...input.config, r: input.config.r ?? mostCommon(ranks), targetModules: targets });
  const rankPattern: Record<string, number> = { ...base.rankPattern };
  const alphaPattern: Record<string, number> = { ...base.alphaPattern };
  input.modules.forEach((m, i) => {
    const tensor = adapterTensorKey(m.modulePath, 'A');
    if (!isTargetModule(base, m.modulePath)) {
      throw new FormatError('PEFT_TARGET_MISMATCH', `module '${m.modulePath}' is not matched by target_modules ${JSON.stringify(base.targetModules)}; PEFT would ignore it`, { file: dir, tensor });
    }
    const want = { rank: ranks[i], alpha: m.alpha ?? base.loraAlpha };
    const pairs = [[rankPattern, base.r, want.rank, 'rank'], [alphaPattern, base.loraAlpha, want.alpha, 'alpha']] as const;
    for (const [patterns, fallback, value, what] of pairs) {
      const key = patternKey(patterns, m.modulePath);
      const given = key === undefined ? fallback : patterns[key];
      if (given === value) continue;
      if (key !== undefined) {
        throw new FormatError(what === 'rank' ? 'PEFT_RANK_MISMATCH' : 'PEFT_CONFIG_INVALID', `module '${m.modulePath}' has ${what} ${value} but ${what}_pattern '${key}' gives ${given}`, { file: dir, tensor });
      }
      patterns[uniquePatternKey(m.modulePath, paths)] = value;
    }
  });
  return { ...base, rankPattern, alphaPattern };
}

/** Checks one module's factors: shapes against each other (and against `plan` when given), finite values. */
function checkModule(m: LoraModuleInput, dir: string, plan?: LoraModulePlan): void {
  const [r, inF] = m.A.shape;
  const [outF, rB] = m.B.shape;
  const tensor = adapterTensorKey(m.modulePath, 'B');
  if (m.A.data.length !== r * inF || m.B.data.length !== outF * rB) {
    throw new FormatError('PEFT_SHAPE_MISMATCH', `module '${m.modulePath}': data lengths do not match shapes A [${m.A.shape.join(', ')}], B [${m.B.shape.join(', ')}]`, { file: dir, tensor });
  }
  if (r !== rB || r === 0) {
    throw new FormatError('PEFT_RANK_MISMATCH', `module '${m.modulePath}': A is [${m.A.shape.join(', ')}] (r × in) but B is [${m.B.shape.join(', ')}] (out × r)`, { file: dir, tensor });
  }
  if (plan !== undefined && (r !== plan.rank || inF !== plan.inFeatures || outF !== plan.outFeatures)) {
    throw new FormatError('PEFT_SHAPE_MISMATCH', `module '${m.modulePath}': A [${m.A.shape.join(', ')}] and B [${m.B.shape.join(', ')}] differ from the planned [${plan.rank}, ${plan.inFeatures}] and [${plan.outFeatures}, ${plan.rank}]`, {
      file: dir,
      tensor,
    });
  }
  checkFinite(m.A.data, dir, adapterTensorKey(m.modulePath, 'A'));
  checkFinite(m.B.data, dir, tensor);
}

/** Options of {@link writePeftAdapter} and {@link createPeftAdapterWriter}. */
export interface WritePeftOptions {
  /** Storage dtype of the factors and extra tensors (default F32). */
  readonly dtype?: 'F32' | 'F16' | 'BF16';
  /**
   * When target_modules is not given: true writes the full module paths (exact, for adapters that
   * cover only some of the modules with a given name); false (default) writes the distinct last
   * names (['c_attn'], ['q_proj', 'v_proj']), as PEFT users write them, which targets every module
   * of the base model with such a name.
   */
  readonly exactTargets?: boolean;
}

/** An adapter folder being written; `close()` finishes it, `abort()` drops the weights file. */
export interface PeftAdapterWriter {
  /** The config as it will be written. */
  readonly config: LoraConfig;
  /** Writes one planned module's factors (any order); checks shapes and finite values. */
  writeModule(module: LoraModuleInput): Promise<void>;
  /** Writes one planned extra tensor (path without `base_model.model.`). */
  writeExtra(path: string, data: Float32Array | Float64Array): Promise<void>;
  /** Checks that everything was written, moves the weights file into place, writes the config. */
  close(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * Starts a PEFT adapter folder whose modules are written one at a time (peak memory: one module).
 * The config (r, target_modules, rank/alpha patterns) and the weights file's header are fixed by
 * the plan; tensors sit in the plan's order (A then B per module, then extras) whatever order they
 * are written in, so the file is byte-identical to {@link writePeftAdapter}'s for the same plan.
 */
export async function createPeftAdapterWriter(dir: string, plan: PeftAdapterPlan, options: WritePeftOptions = {}): Promise<PeftAdapterWriter> {
  if (plan.modules.length === 0) throw new FormatError('PEFT_CONFIG_INVALID', 'an adapter needs at least one module', { file: dir });
  const planned = new Map<string, LoraModulePlan>();
  for (const m of plan.modules) {
    if (planned.has(m.modulePath)) throw new FormatError('PEFT_CONFIG_INVALID', `module '${m.modulePath}' is listed twice`, { file: dir });
    planned.set(m.modulePath, m);
  }
  const config = resolveConfig(plan, dir, options.exactTargets === true);
  const extras = [...(plan.extraTensors ?? new Map<string, { shape: readonly number[] }>()).entries()];
  for (const [path] of extras) {
    const saved = (config.modulesToSave ?? []).some((name) => new RegExp(`(^|\\.)${name.replace(/\./g, '\\.')}\\.`).test(path));
    const bias = config.bias !== 'none' && path.endsWith('.bias');
    if (!saved && !bias) {
      throw new FormatError('PEFT_TARGET_MISMATCH', `extra tensor '${path}' belongs to no module in modules_to_save ${JSON.stringify(config.modulesToSave)}; PEFT would ignore it`, { file: dir });
    }
  }

  await mkdir(dir, { recursive: true });
  const dtype = options.dtype ?? 'F32';
  const entries: SafetensorsEntry[] = plan.modules.flatMap((m) => [
    { name: adapterTensorKey(m.modulePath, 'A'), dtype, shape: [m.rank, m.inFeatures] },
    { name: adapterTensorKey(m.modulePath, 'B'), dtype, shape: [m.outFeatures, m.rank] },
  ]);
  for (const [path, t] of extras) entries.push({ name: PREFIX + path, dtype, shape: t.shape });
  const writer = await createSafetensorsWriter(join(dir, ADAPTER_WEIGHTS_FILE), entries, { format: 'pt' });
  return {
    config,
    async writeModule(m) {
      const p = planned.get(m.modulePath);
      if (p === undefined) throw new FormatError('PEFT_CONFIG_INVALID', `module '${m.modulePath}' is not among the ${planned.size} planned modules`, { file: dir });
      checkModule(m, dir, p);
      await writer.writeTensor(adapterTensorKey(m.modulePath, 'A'), m.A.data);
      await writer.writeTensor(adapterTensorKey(m.modulePath, 'B'), m.B.data);
    },
    async writeExtra(path, data) {
      checkFinite(data, dir, PREFIX + path);
      await writer.writeTensor(PREFIX + path, data);
    },
    async close() {
      await writer.close();
      await writeFileAtomic(join(dir, ADAPTER_CONFIG_FILE), serializeLoraConfig(config));
    },
    abort: () => writer.abort(),
  };
}

/**
 * Writes a PEFT LoRA adapter folder loadable by `PeftModel.from_pretrained`. Modules whose rank
 * or alpha differ from r / lora_alpha get rank_pattern / alpha_pattern entries. Returns the config
 * as written. Both files are replaced atomically.
 */
export async function writePeftAdapter(dir: string, adapter: PeftAdapterInput, options: WritePeftOptions = {}): Promise<LoraConfig> {
  if (adapter.modules.length === 0) throw new FormatError('PEFT_CONFIG_INVALID', 'an adapter needs at least one module', { file: dir });
  const seen = new Set<string>();
  for (const m of adapter.modules) {
    if (seen.has(m.modulePath)) throw new FormatError('PEFT_CONFIG_INVALID', `module '${m.modulePath}' is listed twice`, { file: dir });
    seen.add(m.modulePath);
    checkModule(m, dir);
  }
  const extras = [...(adapter.extraTensors ?? new Map<string, Tensor>()).entries()];
  // Refused before the folder is created, as the modules are.
  for (const [path, t] of extras) checkFinite(t.data, dir, PREFIX + path);
  const writer = await createPeftAdapterWriter(dir, {
    config: adapter.config,
    modules: adapter.modules.map((m) => ({ modulePath: m.modulePath, rank: m.A.shape[0], inFeatures: m.A.shape[1], outFeatures: m.B.shape[0], ...(m.alpha !== undefined ? { alpha: m.alpha } : {}) })),
    extraTensors: new Map(extras.map(([path, t]) => [path, { shape: t.shape }])),
  }, options);
  try {
    for (const m of adapter.modules) await writer.writeModule(m);
    for (const [path, t] of extras) await writer.writeExtra(path, t.data);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await writer.close();
  return writer.config;
}
