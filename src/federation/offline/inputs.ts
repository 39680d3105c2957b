/**
 * The input side of offline aggregation, all checked before anything is written: the base model
 * (a folder or a .safetensors file), the client weights, the adapter folders (opened as indexes and
 * checked to agree), and the plan that maps each adapted module to its base weight.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoraModuleSpec } from '../../core/lora.js';
import { openPeftAdapterIndex } from '../../formats/peftIndex.js';
import type { PeftAdapterIndex } from '../../formats/peftIndex.js';
import type { SafetensorsReader } from '../../formats/safetensors.js';
import { isFloatDType } from '../../formats/safetensorsHeader.js';
import { checkBaseShape, inferLayout, resolveBaseKey } from '../../formats/adapterKeys.js';
import { readHfConfig } from '../../formats/hfConfig.js';
import { AggregationInputError } from './errors.js';

/** The base checkpoint file and, when the folder has a config.json, its model type. */
export interface ResolvedBase {
  file: string;
  modelType?: string;
}

/** Finds model.safetensors (and config.json) of a base folder, or takes a .safetensors file; names what is missing. */
export async function resolveBase(path: string): Promise<ResolvedBase> {
  const info = await stat(path).catch(() => null);
  if (info === null) throw new AggregationInputError('BASE_NOT_FOUND', `base model '${path}' does not exist`);
  if (info.isFile()) return { file: path };
  const file = join(path, 'model.safetensors');
  if ((await stat(file).catch(() => null)) === null) {
    const sharded = (await stat(join(path, 'model.safetensors.index.json')).catch(() => null)) !== null;
    throw new AggregationInputError('BASE_NOT_FOUND', sharded
      ? `base model folder '${path}' is sharded (model.safetensors.index.json); sharded checkpoints are not supported yet: merge the shards into one model.safetensors`
      : `base model folder '${path}' has no model.safetensors`);
  }
  const hasConfig = (await stat(join(path, 'config.json')).catch(() => null)) !== null;
  return { file, modelType: hasConfig ? (await readHfConfig(join(path, 'config.json'))).modelType : undefined };
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
export function planModules(adapters: readonly PeftAdapterIndex[], reader: SafetensorsReader, base: ResolvedBase): Map<string, ModulePlan> {
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
