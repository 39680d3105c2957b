/**
 * Trainer adapters ↔ PEFT adapter folders (src/formats/peft.ts): what `fedex train` writes and what
 * `--adapter` / `fedex eval --adapter` read. The written folder loads with
 * `PeftModel.from_pretrained(base, dir)`: keys `base_model.model.<path>.lora_A.weight`, the trainer's
 * r / lora_alpha / use_rslora / target_modules, `fan_in_fan_out` for GPT-2's Conv1D layers,
 * `modules_to_save` tensors as `base_model.model.<name>`.
 */
import type { LoraFactors } from '../core/lora.js';
import type { Tensor } from '../core/tensor.js';
import { readPeftAdapter, writePeftAdapter } from '../formats/peft.js';
import type { LoraConfig } from '../formats/peftConfig.js';
import { peftTargetModules } from '../model/targetModules.js';
import type { ModelTask } from '../model/types.js';
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
    return { modulePath: m.path, A: f.a, B: f.b };
  });
  const extraTensors = new Map<string, Tensor>();
  for (const s of info.saved) {
    const data = adapter.saved?.get(s.name);
    if (data === undefined) throw new Error(`writeAdapterFolder: the adapter has no value for the saved tensor '${s.name}'`);
    extraTensors.set(s.name, { shape: s.shape, data });
  }
  const savedModules = [...new Set(info.saved.map((s) => s.name.slice(0, s.name.lastIndexOf('.'))))];
  const modulesToSave = [...new Set([...lora.modulesToSave, ...savedModules])];
  return writePeftAdapter(dir, {
    config: {
      r: lora.r,
      loraAlpha: lora.alpha,
      useRslora: lora.useRslora,
      loraDropout: lora.dropout,
      targetModules: peftTargetModules(lora.targetModules, info.modules.map((m) => m.path)),
      fanInFanOut: info.modules.length > 0 && info.modules.every((m) => m.layout === 'conv1d'),
      taskType: peftTaskType(info.task),
      modulesToSave: modulesToSave.length > 0 ? modulesToSave : null,
      ...(meta.baseModel !== undefined ? { baseModelNameOrPath: meta.baseModel } : {}),
    },
    modules,
    extraTensors,
  });
}

/**
 * Reads a PEFT folder as a trainer adapter for `info`'s modules: every adapted module must be
 * present with rank `r`, and nothing else; saved tensors are taken when the trainer has them.
 */
export async function readAdapterFolder(dir: string, info: Pick<TrainerInfo, 'modules' | 'saved'>, r: number): Promise<AdapterTensors> {
  const peft = await readPeftAdapter(dir);
  const byPath = new Map(peft.modules.map((m) => [m.modulePath, m]));
  const modules = new Map<string, LoraFactors>();
  for (const m of info.modules) {
    const found = byPath.get(m.path);
    if (found === undefined) {
      throw new Error(`${dir}: the adapter has no factors for module '${m.path}' (it holds ${peft.modules.map((x) => x.modulePath).join(', ') || 'none'}); train with the same target modules`);
    }
    if (found.rank !== r) throw new Error(`${dir}: module '${m.path}' has rank ${found.rank}, the trainer uses r = ${r}`);
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
    if (t !== undefined) saved.set(s.name, t.data);
  }
  return { modules, saved };
}
