/**
 * PEFT LoRA adapter folders (`adapter_config.json` + `adapter_model.safetensors`), read and
 * written so that a folder written here loads unchanged with `PeftModel.from_pretrained`.
 *
 * Tensor keys are `base_model.model.<module path>.lora_A.weight` (r × in) and `.lora_B.weight`
 * (out × r), without the adapter name; other tensors (modules_to_save, trained biases) are
 * `base_model.model.<path>` and are carried as `extraTensors`.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Matrix, Tensor } from '../core/tensor.js';
import { FormatError, isNotFound } from './errors.js';
import { writeFileAtomic } from './atomicFile.js';
import { openSafetensors } from './safetensors.js';
import type { SafetensorsDType } from './safetensorsHeader.js';
import { createSafetensorsWriter } from './safetensorsWriter.js';
import type { SafetensorsEntry } from './safetensorsWriter.js';
import { alphaOf, isTargetModule, loraConfig, loraScaling, parseLoraConfig, patternKey, rankOf, serializeLoraConfig } from './peftConfig.js';
import type { LoraConfig } from './peftConfig.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
const PREFIX = 'base_model.model.';

/** One adapted module: W_eff = W0 + scaling · B·A (Linear layout). */
export interface LoraModule {
  readonly modulePath: string;
  /** r × in */
  readonly A: Matrix<Float32Array>;
  /** out × r */
  readonly B: Matrix<Float32Array>;
  readonly rank: number;
  readonly alpha: number;
  readonly scaling: number;
}

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

/** The safetensors key of a module's factor. */
export function adapterTensorKey(modulePath: string, factor: 'A' | 'B'): string {
  return `${PREFIX}${modulePath}.lora_${factor}.weight`;
}

function checkFinite(data: ArrayLike<number>, file: string, tensor: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new FormatError('PEFT_NON_FINITE', `holds ${data[i]} at flat index ${i}`, { file, tensor });
  }
}

/** Reads and checks `adapter_config.json` of a folder. */
export async function readLoraConfig(dir: string): Promise<LoraConfig> {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isNotFound(err)) throw new FormatError('FILE_NOT_FOUND', `adapter folder has no ${ADAPTER_CONFIG_FILE}`, { file }, { cause: err });
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new FormatError('PEFT_CONFIG_INVALID', `invalid JSON (${(cause as Error).message})`, { file }, { cause });
  }
  return parseLoraConfig(json, file);
}

interface KeyPair {
  A?: string;
  B?: string;
}

/** Sorts a file's keys into LoRA factor pairs and other tensors; refuses LoRA variants it cannot represent. */
function classifyKeys(keys: Iterable<string>, file: string): { pairs: Map<string, KeyPair>; extras: string[] } {
  const pairs = new Map<string, KeyPair>();
  const extras: string[] = [];
  for (const key of keys) {
    const path = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
    const m = /^(.+)\.lora_([AB])\.weight$/.exec(path);
    if (m !== null) {
      const pair = pairs.get(m[1]) ?? {};
      pair[m[2] as 'A' | 'B'] = key;
      pairs.set(m[1], pair);
    } else if (/(^|\.)lora_/.test(path)) {
      throw new FormatError('PEFT_UNSUPPORTED',
        'is not a plain LoRA factor (lora_A/lora_B .weight without adapter name); embedding LoRA, DoRA and LoRA biases are not supported', { file, tensor: key });
    } else {
      extras.push(key);
    }
  }
  return { pairs, extras };
}

/**
 * Reads a PEFT LoRA adapter folder: config, every module's A (r × in) and B (out × r) as float32
 * with its rank, alpha and scaling, and any extra tensors. Checks that both factors exist, that
 * ranks agree with each other and with the config (r / rank_pattern), that the module is one the
 * config targets, and that values are finite (unless `allowNonFinite`).
 */
export async function readPeftAdapter(dir: string, options: { allowNonFinite?: boolean } = {}): Promise<PeftAdapter> {
  const config = await readLoraConfig(dir);
  const file = join(dir, ADAPTER_WEIGHTS_FILE);
  const reader = await openSafetensors(file).catch(async (err: unknown) => {
    if (err instanceof FormatError && err.code === 'FILE_NOT_FOUND') {
      const bin = await readFile(join(dir, 'adapter_model.bin')).then(() => true, () => false);
      if (bin) throw new FormatError('PEFT_UNSUPPORTED', 'only adapter_model.bin (pickle) is present; save the adapter with safe_serialization=True', { file: dir });
    }
    throw err;
  });
  try {
    const { pairs, extras } = classifyKeys(reader.tensors.keys(), file);
    const modules: LoraModule[] = [];
    let dtype: SafetensorsDType | undefined;
    for (const [modulePath, pair] of pairs) {
      if (pair.A === undefined || pair.B === undefined) {
        const have = (pair.A ?? pair.B)!;
        throw new FormatError('PEFT_MISSING_TENSOR', `has no partner ${adapterTensorKey(modulePath, pair.A === undefined ? 'A' : 'B')}`, { file, tensor: have });
      }
      const infoA = reader.info(pair.A);
      const infoB = reader.info(pair.B);
      for (const info of [infoA, infoB]) {
        if (info.shape.length !== 2) throw new FormatError('PEFT_SHAPE_MISMATCH', `must be 2-D, has shape [${info.shape.join(', ')}]`, { file, tensor: info.name });
      }
      const rank = infoA.shape[0];
      if (infoB.shape[1] !== rank) {
        throw new FormatError('PEFT_RANK_MISMATCH', `lora_A has rank ${rank} (shape [${infoA.shape.join(', ')}]) but lora_B has shape [${infoB.shape.join(', ')}]`, { file, tensor: pair.B });
      }
      const want = rankOf(config, modulePath);
      if (rank !== want) {
        const key = patternKey(config.rankPattern, modulePath);
        throw new FormatError('PEFT_RANK_MISMATCH', `has rank ${rank} but the config gives this module r = ${want}${key === undefined ? '' : ` (rank_pattern '${key}')`}`, { file, tensor: pair.A });
      }
      if (!isTargetModule(config, modulePath)) {
        throw new FormatError('PEFT_TARGET_MISMATCH', `module '${modulePath}' is not matched by target_modules ${JSON.stringify(config.targetModules)}; PEFT would ignore it`, { file, tensor: pair.A });
      }
      const A = await reader.readMatrix(pair.A);
      const B = await reader.readMatrix(pair.B);
      if (options.allowNonFinite !== true) {
        checkFinite(A.data, file, pair.A);
        checkFinite(B.data, file, pair.B);
      }
      const alpha = alphaOf(config, modulePath);
      modules.push({ modulePath, A, B, rank, alpha, scaling: loraScaling(alpha, rank, config.useRslora) });
      dtype ??= infoA.dtype;
    }
    const extraTensors = new Map<string, Tensor<Float32Array>>();
    for (const key of extras) {
      const info = reader.info(key);
      if (!['F16', 'BF16', 'F32', 'F64'].includes(info.dtype)) {
        throw new FormatError('PEFT_UNSUPPORTED', `extra tensor has dtype ${info.dtype}; only float tensors are supported`, { file, tensor: key });
      }
      const t = await reader.readTensor(key);
      if (options.allowNonFinite !== true) checkFinite(t.data, file, key);
      extraTensors.set(key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key, t);
    }
    return { dir, config, modules, extraTensors, dtype: dtype ?? 'F32' };
  } finally {
    await reader.close();
  }
}

/** A module to write. `alpha` defaults to the config's loraAlpha. */
export interface LoraModuleInput {
  readonly modulePath: string;
  readonly A: Matrix;
  readonly B: Matrix;
  readonly alpha?: number;
}

/** What to write: config fields (r and target_modules are derived from the modules when absent). */
export interface PeftAdapterInput {
  readonly config: Partial<LoraConfig> & { readonly loraAlpha: number };
  readonly modules: readonly LoraModuleInput[];
  readonly extraTensors?: ReadonlyMap<string, Tensor>;
}

function mostCommon(values: readonly number[]): number {
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

/** Config as it will be written: derived r and target_modules, rank/alpha patterns for the exceptions. */
function resolveConfig(input: PeftAdapterInput, dir: string, exactTargets: boolean): LoraConfig {
  const paths = input.modules.map((m) => m.modulePath);
  const ranks = input.modules.map((m) => m.A.shape[0]);
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
        throw new FormatError(what === 'rank' ? 'PEFT_RANK_MISMATCH' : 'PEFT_CONFIG_INVALID',
          `module '${m.modulePath}' has ${what} ${value} but ${what}_pattern '${key}' gives ${given}`, { file: dir, tensor });
      }
      patterns[uniquePatternKey(m.modulePath, paths)] = value;
    }
  });
  return { ...base, rankPattern, alphaPattern };
}

function checkModule(m: LoraModuleInput, dir: string): void {
  const [r, inF] = m.A.shape;
  const [outF, rB] = m.B.shape;
  const tensor = adapterTensorKey(m.modulePath, 'B');
  if (m.A.data.length !== r * inF || m.B.data.length !== outF * rB) {
    throw new FormatError('PEFT_SHAPE_MISMATCH', `module '${m.modulePath}': data lengths do not match shapes A [${m.A.shape.join(', ')}], B [${m.B.shape.join(', ')}]`, { file: dir, tensor });
  }
  if (r !== rB || r === 0) {
    throw new FormatError('PEFT_RANK_MISMATCH', `module '${m.modulePath}': A is [${m.A.shape.join(', ')}] (r × in) but B is [${m.B.shape.join(', ')}] (out × r)`, { file: dir, tensor });
  }
  checkFinite(m.A.data, dir, adapterTensorKey(m.modulePath, 'A'));
  checkFinite(m.B.data, dir, tensor);
}

/** Options of {@link writePeftAdapter}. */
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
  const config = resolveConfig(adapter, dir, options.exactTargets === true);
  const extras = [...(adapter.extraTensors ?? new Map<string, Tensor>()).entries()];
  for (const [path, t] of extras) {
    const saved = (config.modulesToSave ?? []).some((name) => new RegExp(`(^|\\.)${name.replace(/\./g, '\\.')}\\.`).test(path));
    const bias = config.bias !== 'none' && path.endsWith('.bias');
    if (!saved && !bias) {
      throw new FormatError('PEFT_TARGET_MISMATCH', `extra tensor '${path}' belongs to no module in modules_to_save ${JSON.stringify(config.modulesToSave)}; PEFT would ignore it`, { file: dir });
    }
    checkFinite(t.data, dir, PREFIX + path);
  }

  await mkdir(dir, { recursive: true });
  const dtype = options.dtype ?? 'F32';
  const entries: SafetensorsEntry[] = adapter.modules.flatMap((m) => [
    { name: adapterTensorKey(m.modulePath, 'A'), dtype, shape: m.A.shape },
    { name: adapterTensorKey(m.modulePath, 'B'), dtype, shape: m.B.shape },
  ]);
  for (const [path, t] of extras) entries.push({ name: PREFIX + path, dtype, shape: t.shape });
  const writer = await createSafetensorsWriter(join(dir, ADAPTER_WEIGHTS_FILE), entries, { format: 'pt' });
  try {
    for (const m of adapter.modules) {
      await writer.writeTensor(adapterTensorKey(m.modulePath, 'A'), m.A.data);
      await writer.writeTensor(adapterTensorKey(m.modulePath, 'B'), m.B.data);
    }
    for (const [path, t] of extras) await writer.writeTensor(PREFIX + path, t.data);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await writer.close();
  await writeFileAtomic(join(dir, ADAPTER_CONFIG_FILE), serializeLoraConfig(config));
  return config;
}

