/**
 * Trainer adapters ↔ PEFT adapter folders (src/formats/peft.ts): what `fedex train` writes and what
 * `--adapter` / `fedex eval --adapter` read. The written folder loads with
 * `PeftModel.from_pretrained(base, dir)`: keys `base_model.model.<path>.lora_A.weight`, the trainer's
 * r / lora_alpha / use_rslora / target_modules, its rank_pattern / alpha_pattern /
 * layers_to_transform / layers_pattern when it has them (per-module ranks and alphas, some layers
 * only: docs/models.md), `fan_in_fan_out` for GPT-2's Conv1D layers, `modules_to_save` tensors as
 * `base_model.model.<name>`.
 */
import type { LoraFactors } from '../core/lora.js';
import type { Tensor } from '../core/tensor.js';
import { join } from 'node:path';
import { ADAPTER_CONFIG_FILE, readPeftAdapter, writePeftAdapter } from '../formats/peft.js';
import { PEFT_CLASSIFIER_MODULES, peftModulesToSave } from '../formats/peftConfig.js';
import type { LoraConfig } from '../formats/peftConfig.js';
import { moduleLora, peftTargetModules } from '../model/targetModules.js';
import type { ModuleLoraSettings } from '../model/targetModules.js';
import type { LoraSettings, ModelTask } from '../model/types.js';
import { defaultLoraSettings } from './setup.js';
import type { AdapterTensors, TrainerInfo } from './types.js';

/** PEFT task_type of a model task. */
export function peftTaskType(task: ModelTask): string {
  return task === 'causal-lm' ? 'CAUSAL_LM' : 'SEQ_CLS';
}

/** What is written besides the tensors. */
export interface AdapterFolderMeta {
  readonly info: Pick<TrainerInfo, 'modules' | 'saved' | 'task' | 'lora'>;
  /** `base_model_name_or_path` (the model folder). */
  readonly baseModel?: string;
}

/** Writes `adapter` as a PEFT folder (created; both files replaced atomically). Returns the config written. */
export async function writeAdapterFolder(dir: string, adapter: AdapterTensors, meta: AdapterFolderMeta): Promise<LoraConfig> {
  const { info } = meta;
  const { lora } = info;
  const modules = info.modules.map((m) => {
    const f = adapter.modules.get(m.path);
    if (f === undefined) throw new Error(`writeAdapterFolder: the adapter has no factors for module '${m.path}'`);
    // Its own alpha (alpha_pattern), so the writer checks it against the pattern it writes.
    return { modulePath: m.path, A: f.a, B: f.b, alpha: moduleLora(lora, m.path).alpha };
  });
  const extraTensors = new Map<string, Tensor>();
  for (const s of info.saved) {
    const data = adapter.saved?.get(s.name);
    if (data === undefined) throw new Error(`writeAdapterFolder: the adapter has no value for the saved tensor '${s.name}'`);
    extraTensors.set(s.name, { shape: s.shape, data });
  }
  const savedModules = info.saved.map((s) => s.name.slice(0, s.name.lastIndexOf('.')));
  // Named as PEFT names them (module level, `classifier` for RoBERTa's classifier.dense/out_proj), so PEFT loads them.
  const modulesToSave = peftModulesToSave([...lora.modulesToSave, ...savedModules], peftTaskType(info.task));
  return writePeftAdapter(dir, {
    config: {
      r: lora.r,
      loraAlpha: lora.alpha,
      useRslora: lora.useRslora,
      rankPattern: lora.rankPattern ?? {},
      alphaPattern: lora.alphaPattern ?? {},
      layersToTransform: lora.layersToTransform ?? null,
      layersPattern: lora.layersPattern ?? null,
      loraDropout: lora.dropout,
      targetModules: peftTargetModules(lora.targetModules, info.modules.map((m) => m.path)),
      fanInFanOut: info.modules.length > 0 && info.modules.every((m) => m.layout === 'conv1d'),
      taskType: peftTaskType(info.task),
      modulesToSave,
      ...(meta.baseModel !== undefined ? { baseModelNameOrPath: meta.baseModel } : {}),
    },
    modules,
    extraTensors,
  });
}

/**
 * Reads a PEFT folder as a trainer adapter for `info`'s modules: every adapted module must be
 * present with the rank the trainer gives it (`lora`: its rank_pattern, else r; a number: that rank
 * for every module), and nothing else; saved tensors are taken when the trainer has them.
 */
export async function readAdapterFolder(dir: string, info: Pick<TrainerInfo, 'modules' | 'saved'>, lora: number | ModuleLoraSettings): Promise<AdapterTensors> {
  const peft = await readPeftAdapter(dir);
  const byPath = new Map(peft.modules.map((m) => [m.modulePath, m]));
  const modules = new Map<string, LoraFactors>();
  for (const m of info.modules) {
    const found = byPath.get(m.path);
    if (found === undefined) {
      throw new Error(`${dir}: the adapter has no factors for module '${m.path}' (it holds ${peft.modules.map((x) => x.modulePath).join(', ') || 'none'}); train with the same target modules`);
    }
    const own = typeof lora === 'number' ? undefined : moduleLora(lora, m.path);
    const r = own?.rank ?? (lora as number);
    if (found.rank !== r) throw new Error(`${dir}: module '${m.path}' has rank ${found.rank}, the trainer uses r = ${r} for it`);
    if (own !== undefined && Math.abs(found.scaling - own.scaling) > 1e-12 * Math.abs(own.scaling)) {
      throw new Error(`${dir}: module '${m.path}' has scaling ${found.scaling} (alpha ${found.alpha}, rank ${found.rank}), the trainer uses ${own.scaling} (alpha ${own.alpha}) for it`);
    }
    if (found.A.shape[1] !== m.inFeatures || found.B.shape[0] !== m.outFeatures) {
      throw new Error(`${dir}: module '${m.path}' has A [${found.A.shape.join(', ')}] and B [${found.B.shape.join(', ')}], the model needs A [${r}, ${m.inFeatures}] and B [${m.outFeatures}, ${r}]`);
    }
    modules.set(m.path, { a: found.A, b: found.B });
    byPath.delete(m.path);
  }
  if (byPath.size > 0) throw new Error(`${dir}: the adapter adapts modules this model configuration does not: ${[...byPath.keys()].join(', ')}`);
  const saved = new Map<string, Float32Array>();
  for (const s of info.saved) {
    const t = peft.extraTensors.get(s.name);
    if (t === undefined) continue;
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new Error(`${dir}: saved tensor '${s.name}' has shape [${t.shape.join(', ')}], the model needs [${s.shape.join(', ')}]`);
    }
    saved.set(s.name, t.data);
  }
  // A trained tensor the model has no place for would be silently dropped: refuse it.
  const unused = [...peft.extraTensors.keys()].filter((k) => !saved.has(k));
  if (unused.length > 0) {
    throw new Error(`${dir}: the adapter holds trained tensors this model does not use: ${unused.join(', ')} (modules_to_save ${JSON.stringify(peft.config.modulesToSave)}, bias "${peft.config.bias}")`);
  }
  return { modules, saved };
}

/** LoRA settings given on a command line; absent fields are taken from the adapter. */
export interface ExplicitLora {
  readonly r?: number;
  readonly alpha?: number;
  readonly useRslora?: boolean;
  readonly dropout?: number;
  readonly targetModules?: readonly string[];
}

function sameTargets(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
}

/**
 * The trainer's LoRA settings for an adapter folder's config: its r, lora_alpha, use_rslora,
 * lora_dropout, target_modules and modules_to_save. `given` holds what was asked for explicitly
 * (flags); a value that contradicts the adapter is an error naming both (`names` maps a field to
 * its flag). PEFT's classifier head names (`classifier`, `score`) are left out of modules_to_save:
 * the trainer trains and saves a classification model's head whatever the list says, and
 * {@link readAdapterFolder} refuses saved tensors the model does not use. Per-module ranks and
 * alphas (rank_pattern, alpha_pattern) and layers_to_transform / layers_pattern are kept: the model
 * build applies them as PEFT does and refuses a key or layer index that selects no module.
 */
export function loraSettingsOfAdapter(config: LoraConfig, dir: string, given: ExplicitLora = {}, names: Partial<Record<keyof ExplicitLora, string>> = {}): LoraSettings {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  if (typeof config.targetModules === 'string' && config.layersToTransform !== null) {
    throw new Error(
      `${file}: layers_to_transform ${JSON.stringify(config.layersToTransform)} with a regular-expression target_modules ${
        JSON.stringify(config.targetModules)
      }: PEFT refuses the pair (older releases ignore layers_to_transform); list module names in target_modules`,
    );
  }
  const targets = config.targetModules === null ? [] : typeof config.targetModules === 'string' ? [config.targetModules] : [...config.targetModules];
  const conflicts: string[] = [];
  const check = (field: keyof ExplicitLora, mine: unknown, peftName: string, same: boolean): void => {
    if (!same) conflicts.push(`${names[field] ?? field} ${JSON.stringify(given[field])} contradicts ${peftName} = ${JSON.stringify(mine)}`);
  };
  if (given.r !== undefined) check('r', config.r, 'r', given.r === config.r);
  if (given.alpha !== undefined) check('alpha', config.loraAlpha, 'lora_alpha', given.alpha === config.loraAlpha);
  if (given.useRslora !== undefined) check('useRslora', config.useRslora, 'use_rslora', given.useRslora === config.useRslora);
  if (given.targetModules !== undefined) check('targetModules', config.targetModules, 'target_modules', sameTargets(given.targetModules, targets));
  if (conflicts.length > 0) {
    throw new Error(`${conflicts.join('; ')} in ${file}; leave ${conflicts.length === 1 ? 'it' : 'them'} out to use the adapter's own settings`);
  }
  return defaultLoraSettings({
    r: config.r,
    alpha: config.loraAlpha,
    useRslora: config.useRslora,
    dropout: given.dropout ?? config.loraDropout,
    targetModules: targets,
    modulesToSave: (config.modulesToSave ?? []).filter((m) => !PEFT_CLASSIFIER_MODULES.includes(m)),
    ...(Object.keys(config.rankPattern).length > 0 ? { rankPattern: { ...config.rankPattern } } : {}),
    ...(Object.keys(config.alphaPattern).length > 0 ? { alphaPattern: { ...config.alphaPattern } } : {}),
    ...(config.layersToTransform !== null ? { layersToTransform: config.layersToTransform, layersPattern: config.layersPattern } : {}),
  });
}
