/**
 * The input side of offline aggregation, all checked before anything is written: the base model
 * (a folder with model.safetensors or a sharded index, or a .safetensors file), the client weights,
 * the adapter folders (opened as indexes and checked to agree), and the plan that maps each adapted
 * module to its base weight.
 */
import { copyFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { LoraModuleSpec } from '../../core/lora.js';
import { openPeftAdapterIndex } from '../../formats/peftIndex.js';
import type { PeftAdapterIndex } from '../../formats/peftIndex.js';
import { openSafetensors } from '../../formats/safetensors.js';
import type { SafetensorsReader, TensorInfo } from '../../formats/safetensors.js';
import type { SafetensorsWriter } from '../../formats/safetensorsWriter.js';
import { readSafetensorsIndex, SAFETENSORS_INDEX_FILE } from '../../model/checkpoint.js';
import { isFloatDType } from '../../formats/safetensorsHeader.js';
import { checkBaseShape, inferLayout, resolveBaseKey } from '../../formats/adapterKeys.js';
import { readHfConfig } from '../../formats/hfConfig.js';
import { AggregationInputError } from './errors.js';

/** The base checkpoint: one safetensors file or the shards of an index, and the model type when there is a config.json. */
export interface ResolvedBase {
  /** What errors and the report name: the single file, or the index of a sharded base. */
  file: string;
  /** The base folder (absent when a bare .safetensors file was given). */
  dir?: string;
  /** The safetensors files (absolute or as given), in index order; one for an unsharded base. */
  files: readonly string[];
  /** A sharded base's index: its weight_map and JSON (written back with the new total_size). */
  index?: { weightMap: ReadonlyMap<string, string>; json: Readonly<Record<string, unknown>> };
  modelType?: string;
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}

/**
 * Finds the weights of a base folder — model.safetensors, or the shards model.safetensors.index.json
 * lists (the index file itself stands for its folder) — and its config.json, or takes a .safetensors
 * file; names what is missing. Shards are taken in name order (model-00001-of-…, …), which is
 * their order in the checkpoint whatever order the index lists its keys in.
 */
export async function resolveBase(path: string): Promise<ResolvedBase> {
  const info = await stat(path).catch(() => null);
  if (info === null) throw new AggregationInputError('BASE_NOT_FOUND', `base model '${path}' does not exist`);
  if (info.isFile() && basename(path) !== SAFETENSORS_INDEX_FILE) return { file: path, files: [path] };
  const dir = info.isFile() ? dirname(path) : path;
  const modelType = (await exists(join(dir, 'config.json'))) ? (await readHfConfig(join(dir, 'config.json'))).modelType : undefined;
  const file = join(dir, 'model.safetensors');
  if (!info.isFile() && (await exists(file))) return { file, dir, files: [file], modelType };
  const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
  if (!(await exists(indexPath))) throw new AggregationInputError('BASE_NOT_FOUND', `base model folder '${dir}' has no model.safetensors or ${SAFETENSORS_INDEX_FILE}`);
  const { weightMap, json } = await readSafetensorsIndex(indexPath);
  const files = [...new Set(weightMap.values())].sort().map((f) => join(dir, f));
  for (const f of files) {
    if (!(await exists(f))) throw new AggregationInputError('BASE_NOT_FOUND', `shard '${f}' listed in '${indexPath}' does not exist`);
  }
  return { file: indexPath, dir, files, index: { weightMap, json }, modelType };
}

/** Files of a Hugging Face model folder that describe it besides the weights (copied to a written model). */
export const MODEL_FOLDER_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.json',
  'merges.txt',
  'vocab.txt',
  'tokenizer.model',
  'added_tokens.json',
] as const;

/** Copies those of {@link MODEL_FOLDER_FILES} that `from` has into `to`. */
export async function copyModelFiles(from: string, to: string): Promise<void> {
  for (const f of MODEL_FOLDER_FILES) {
    if (await exists(join(from, f))) await copyFile(join(from, f), join(to, f));
  }
}

/** The tensors of every base file as one checkpoint: which reader holds each, checked against the index. */
export interface BaseView {
  readonly readers: readonly SafetensorsReader[];
  /** Every tensor by name, in file order, shard after shard. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  info(name: string): TensorInfo;
  readerOf(name: string): SafetensorsReader;
}

/** Opens every base file (headers only) and checks that names are unique and the index agrees; closes all on failure. */
export async function openBase(base: ResolvedBase): Promise<BaseView> {
  const readers: SafetensorsReader[] = [];
  try {
    for (const f of base.files) readers.push(await openSafetensors(f));
    const owner = new Map<string, SafetensorsReader>();
    const tensors = new Map<string, TensorInfo>();
    for (const r of readers) {
      for (const t of r.tensors.values()) {
        const other = owner.get(t.name);
        if (other !== undefined) throw new AggregationInputError('BASE_INVALID', `tensor '${t.name}' is in both '${other.path}' and '${r.path}'`);
        owner.set(t.name, r);
        tensors.set(t.name, t);
      }
    }
    if (base.index !== undefined) {
      for (const [key, f] of base.index.weightMap) {
        const r = owner.get(key);
        if (r === undefined || basename(r.path) !== f) {
          throw new AggregationInputError('BASE_INVALID', `'${base.file}' maps '${key}' to ${f}, which does not hold it${r !== undefined ? ` (it is in '${r.path}')` : ''}`);
        }
      }
    }
    return {
      readers,
      tensors,
      // An unknown name is reported by the first file's reader (with close names).
      info: (name) => (owner.get(name) ?? readers[0]).info(name),
      readerOf: (name) => owner.get(name) ?? readers[0],
    };
  } catch (err) {
    await closeReaders(readers);
    throw err;
  }
}

/** Closes every reader, also when one fails to close; the first failure is rethrown after all were tried. */
export async function closeReaders(readers: readonly SafetensorsReader[]): Promise<void> {
  const failed = (await Promise.allSettled(readers.map((r) => r.close()))).find((r) => r.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
}

/** Checks that every adapter adapts the same modules with the same rank, alpha and rsLoRA flag. */
export function checkAdaptersAgree(adapters: readonly PeftAdapterIndex[]): void {
  const [first, ...rest] = adapters;
  const names = new Map(first.modules.map((m) => [m.modulePath, m]));
  for (const a of rest) {
    if (a.config.useRslora !== first.config.useRslora) {
      throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}' has use_rslora=${a.config.useRslora} but '${first.dir}' has ${first.config.useRslora}`);
    }
    const seen = new Set<string>();
    for (const m of a.modules) {
      const ref = names.get(m.modulePath);
      if (ref === undefined) throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}' adapts module '${m.modulePath}', which '${first.dir}' does not`);
      if (m.rank !== ref.rank) throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}': module '${m.modulePath}' has rank ${m.rank} but '${first.dir}' has rank ${ref.rank}`);
      if (m.alpha !== ref.alpha) throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}': module '${m.modulePath}' has lora_alpha ${m.alpha} but '${first.dir}' has ${ref.alpha}`);
      seen.add(m.modulePath);
    }
    const missing = [...names.keys()].filter((n) => !seen.has(n));
    if (missing.length > 0) throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}' lacks module '${missing[0]}'${missing.length > 1 ? ` and ${missing.length - 1} more` : ''} that '${first.dir}' adapts`);
    // Trained full tensors (modules_to_save heads, biases) are averaged: every client must hold the same ones.
    const extras = new Set(a.extraKeys);
    for (const key of first.extraKeys) {
      if (!extras.has(key)) throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}' lacks the trained tensor '${key}' that '${first.dir}' holds`);
      const [s0, s1] = [first.extraShape(key), a.extraShape(key)];
      if (s0.length !== s1.length || s0.some((d, i) => d !== s1[i])) {
        throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}': trained tensor '${key}' has shape [${s1.join(', ')}] but '${first.dir}' has [${s0.join(', ')}]`);
      }
      extras.delete(key);
    }
    if (extras.size > 0) throw new AggregationInputError('ADAPTER_MISMATCH', `adapter '${a.dir}' holds the trained tensor '${[...extras][0]}', which '${first.dir}' does not`);
  }
}

/** Checks raw client weights up front: finite, non-negative, not all zero; names the adapter folder. */
export function checkWeights(weights: readonly number[], adapters: readonly string[]): void {
  if (weights.length !== adapters.length) throw new AggregationInputError('BAD_WEIGHTS', `${weights.length} weights given for ${adapters.length} adapters`);
  weights.forEach((w, i) => {
    if (!Number.isFinite(w) || w < 0) throw new AggregationInputError('BAD_WEIGHTS', `weight ${w} of adapter '${adapters[i]}' (client ${i}) must be a finite number ≥ 0`);
  });
  if (weights.every((w) => w === 0)) throw new AggregationInputError('BAD_WEIGHTS', `all ${weights.length} weights are zero`);
}

/** Opens every adapter folder as an index, in order; closes those already open when one fails. */
export async function openAdapters(dirs: readonly string[]): Promise<PeftAdapterIndex[]> {
  const open: PeftAdapterIndex[] = [];
  try {
    for (const dir of dirs) open.push(await openPeftAdapterIndex(dir));
    return open;
  } catch (err) {
    await closeAll(open);
    throw err;
  }
}

/** Closes every index (and its weights file). */
export async function closeAll(indexes: readonly PeftAdapterIndex[]): Promise<void> {
  for (const a of indexes) await a.close();
}

/** One adapted module: its spec (layout included) and the base weight it updates. */
export interface ModulePlan {
  spec: LoraModuleSpec;
  baseKey: string;
}

/** Checks every adapted module against the base (key, shape, dtype); keyed by base tensor, in the adapter's order. */
export function planModules(adapters: readonly PeftAdapterIndex[], reader: Pick<BaseView, 'tensors' | 'info'>, base: ResolvedBase): Map<string, ModulePlan> {
  const keys = new Set(reader.tensors.keys());
  const first = adapters[0];
  const plan = new Map<string, ModulePlan>();
  for (const m of first.modules) {
    const baseKey = resolveBaseKey(m.modulePath, keys, { file: base.file });
    if (plan.has(baseKey)) throw new AggregationInputError('ADAPTER_MISMATCH', `modules '${plan.get(baseKey)!.spec.name}' and '${m.modulePath}' both map to base weight '${baseKey}'`);
    // The model type decides Conv1D vs Linear as PEFT does; fan_in_fan_out when there is no config.json.
    const layout = base.modelType !== undefined ? inferLayout(base.modelType, m.modulePath) : inferLayout(first.config.fanInFanOut);
    const info = reader.info(baseKey);
    checkBaseShape(info.shape, layout, { A: { shape: [m.rank, m.inFeatures] }, B: { shape: [m.outFeatures, m.rank] } }, { modulePath: m.modulePath, baseKey, file: base.file });
    if (!isFloatDType(info.dtype)) throw new AggregationInputError('BASE_DTYPE', `base weight '${baseKey}' in '${base.file}' has dtype ${info.dtype}; adapted weights must be floating point`);
    plan.set(baseKey, {
      baseKey,
      spec: { name: m.modulePath, inFeatures: m.inFeatures, outFeatures: m.outFeatures, rank: m.rank, alpha: m.alpha, useRslora: first.config.useRslora, layout },
    });
  }
  return plan;
}

/** Stored bytes per piece when a tensor that is not adapted is copied. */
const COPY_BYTES = 8 << 20;

/** Copies a tensor's stored bytes from the base to a model being written, in pieces (no full-size buffer). */
export async function copyTensorBytes(reader: SafetensorsReader, writer: SafetensorsWriter, info: TensorInfo): Promise<void> {
  let start = 0;
  do {
    const length = Math.min(COPY_BYTES, info.byteLength - start);
    await writer.writeRawPart(info.name, await reader.readRawRange(info.name, start, length));
    start += length;
  } while (start < info.byteLength);
}

/**
 * Writes the index of a model written as the sharded base's shards (same names): the base's index
 * with the new total size, listing every tensor the shards hold, also one the input index left out
 * (a loader that goes by the index must not miss an updated weight).
 */
export async function writeShardIndex(dir: string, base: ResolvedBase, view: BaseView, totalBytes: number): Promise<void> {
  if (base.index === undefined) return;
  const weightMap: Record<string, string> = Object.fromEntries(base.index.weightMap);
  for (const [name] of view.tensors) weightMap[name] ??= basename(view.readerOf(name).path);
  const json = { ...base.index.json, metadata: { ...(base.index.json.metadata as Record<string, unknown> | undefined), total_size: totalBytes }, weight_map: weightMap };
  await writeFile(join(dir, SAFETENSORS_INDEX_FILE), `${JSON.stringify(json, null, 2)}\n`);
}
