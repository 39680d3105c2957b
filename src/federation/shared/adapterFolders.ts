/**
 * A federation's adapters and bases as files: one adapter as a PEFT folder (the host's final/adapter,
 * `join --out`), its config checked before a run, and `--save-adapters` (simulate and host): every round's client adapters and global adapter as PEFT folders, and the
 * global base model after every round, so the exactness can be checked offline with
 * `fedex aggregate`:
 *
 *   <dir>/round-000/base/                 the pristine base (model folder, or base.safetensors)
 *   <dir>/round-003/clients/<client>/     PEFT adapter each client uploaded in round 3
 *   <dir>/round-003/global/               the global adapter after round 3
 *   <dir>/round-003/base/                 the base after round 3 (FedEx: W0 + the folded residuals)
 *
 * `fedex aggregate --method fedex --base round-002/base --adapters round-003/clients/* --out x`
 * reproduces round-003/global and round-003/base. Folder names are built from round numbers and
 * client ids this process chose, never from what a peer sent.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Matrix } from '../../core/tensor.js';
import { checkPeftAdapterPlan, writePeftAdapter } from '../../formats/peft.js';
import type { LoraConfig } from '../../formats/peftConfig.js';
import { peftTargetModules } from '../../model/targetModules.js';
import { writeSafetensors, type TensorToWrite } from '../../formats/safetensorsWriter.js';
import { storedShape } from './baseWeights.js';
import type { Adapter, LoraFactors } from '../../core/lora.js';
import { effectiveFactors } from '../../core/loraSb.js';
import { layoutAtRank, type AdapterLayout } from '../protocol/adapterTensors.js';

/** What writes a base state: the adapted modules, and a full model folder writer when there are model files. */
export interface BaseWriter {
  readonly layout: AdapterLayout;
  /** Writes a complete model folder whose adapted weights are `base` (absent: no model files, e.g. the synthetic model). */
  readonly writeModel?: (dir: string, base: ReadonlyMap<string, Matrix<Float32Array>>) => Promise<void>;
}

/** LoRA settings written into adapter_config.json. */
export interface AdapterConfigFields {
  readonly rank: number;
  readonly alpha: number;
  readonly targetModules: readonly string[];
  readonly fanInFanOut: boolean;
  /** PEFT task_type written into adapter_config.json; default CAUSAL_LM (federations train causal LMs). */
  readonly taskType?: string;
  /**
   * base_model_name_or_path (the base model's folder or hub id): AutoPeftModelForCausalLM loads the
   * base from it, so without it only PeftModel.from_pretrained(base, dir) loads the folder.
   */
  readonly baseModel?: string;
}

/** The adapter fields of a federation with these LoRA settings and layout. */
export function adapterFields(layout: AdapterLayout, lora: { readonly rank: number; readonly alpha: number; readonly targetModules: readonly string[] }, baseModel?: string | null): AdapterConfigFields {
  return {
    rank: lora.rank,
    alpha: lora.alpha,
    targetModules: lora.targetModules,
    fanInFanOut: layout.some((m) => m.fanInFanOut === true),
    ...(baseModel !== undefined && baseModel !== null ? { baseModel } : {}),
  };
}

/** Folder of one round (three digits, so a shell glob lists rounds in order). */
export function roundDir(dir: string, round: number): string {
  return join(dir, `round-${String(round).padStart(3, '0')}`);
}

/** The adapter_config of a federation's adapters: target_modules name the layout's modules (`all-linear` and regexes resolved). */
function federationAdapterConfig(layout: AdapterLayout, fields: AdapterConfigFields): Partial<LoraConfig> & { r: number; loraAlpha: number } {
  // task_type (and base_model_name_or_path) let AutoPeftModelForCausalLM load the folder.
  return {
    r: fields.rank,
    loraAlpha: fields.alpha,
    fanInFanOut: fields.fanInFanOut,
    targetModules: peftTargetModules(fields.targetModules, layout.map((m) => m.module)),
    taskType: fields.taskType ?? FEDERATION_TASK_TYPE,
    ...(fields.baseModel !== undefined ? { baseModelNameOrPath: fields.baseModel } : {}),
  };
}

/** The PEFT task_type of federation adapters: the federation trains causal language models. */
export const FEDERATION_TASK_TYPE = 'CAUSAL_LM';

/**
 * Checks, before a federation starts, that its adapters can be written as PEFT folders that PEFT
 * loads (throws the writer's FormatError naming the module otherwise). `dir` is only named in errors.
 */
export function checkAdapterConfig(dir: string, layout: AdapterLayout, fields: AdapterConfigFields): void {
  checkPeftAdapterPlan({
    config: federationAdapterConfig(layout, fields),
    modules: layout.map((m) => ({ modulePath: m.module, rank: m.rank, inFeatures: m.in, outFeatures: m.out })),
  }, dir);
}

/** Writes one adapter as a PEFT folder; a Fed-SB module (A, B, R) as the standard factors it equals, (A, B·R). */
export async function writeFederationAdapter(dir: string, adapter: Adapter, layout: AdapterLayout, fields: AdapterConfigFields): Promise<void> {
  await writePeftAdapter(dir, {
    config: federationAdapterConfig(layout, fields),
    modules: layout.map((m) => {
      const given = adapter.get(m.module);
      if (given === undefined) throw new RangeError(`writeFederationAdapter: adapter has no module ${m.module}`);
      const f = effectiveFactors(given);
      return { modulePath: m.module, A: f.a, B: f.b };
    }),
  });
}

/**
 * Writes a base state: a full model folder through the workload when it has model files, else a
 * `base.safetensors` with the adapted weights (stored layout, float32) under their module paths + `.weight`.
 */
export async function writeBaseFolder(dir: string, base: ReadonlyMap<string, Matrix<Float32Array>>, workload: BaseWriter): Promise<void> {
  if (workload.writeModel !== undefined) {
    await workload.writeModel(dir, base);
    return;
  }
  await mkdir(dir, { recursive: true });
  const tensors = new Map<string, TensorToWrite>();
  for (const m of workload.layout) {
    const w = base.get(m.module);
    if (w === undefined) throw new RangeError(`writeBaseFolder: base has no module ${m.module}`);
    tensors.set(`${m.module}.weight`, { dtype: 'F32', shape: storedShape(m), data: w.data });
  }
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
}

/** Serialises the writes of one federation so they never overlap and errors surface at `flush`. */
export class AdapterSaver {
  private queue: Promise<void> = Promise.resolve();
  private failed: Error | undefined;

  constructor(readonly dir: string, private readonly workload: BaseWriter, private readonly fields: AdapterConfigFields) {}

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((err: unknown) => {
      this.failed ??= err as Error;
    });
  }

  /**
   * A client's uploaded adapter of `round` (copied now: the caller may reuse the buffers). A client
   * below the global rank (docs/math.md §1.4) is written at its rank r_i with lora_alpha scaled by
   * r_i / r, so that its scaling alpha / r is the federation's (these folders carry no use_rslora).
   */
  client(round: number, clientId: string, adapter: Adapter): void {
    const copy = copyStandardAdapter(adapter);
    const rank = adapterRankBelow(adapter, this.workload.layout);
    const layout = rank === undefined ? this.workload.layout : layoutAtRank(this.workload.layout, rank);
    const fields = rank === undefined ? this.fields : { ...this.fields, rank, alpha: (this.fields.alpha * rank) / this.fields.rank };
    this.enqueue(() => writeFederationAdapter(join(roundDir(this.dir, round), 'clients', clientId), copy, layout, fields));
  }

  /** The global adapter and base after `round` (round 0: the initial state). */
  global(round: number, adapter: Adapter, base: ReadonlyMap<string, Matrix<Float32Array>>): void {
    const a = copyStandardAdapter(adapter);
    const b = new Map([...base].map(([k, m]) => [k, { shape: m.shape, data: Float32Array.from(m.data) } as Matrix<Float32Array>]));
    this.enqueue(async () => {
      if (round > 0) await writeFederationAdapter(join(roundDir(this.dir, round), 'global'), a, this.workload.layout, this.fields);
      await writeBaseFolder(join(roundDir(this.dir, round), 'base'), b, this.workload);
    });
  }

  /** Waits for every write; throws the first failure. */
  async flush(): Promise<void> {
    await this.queue;
    if (this.failed !== undefined) throw this.failed;
  }
}

/** The rank r_i of an adapter trained below the layout's ranks (every module of rank above r_i has r_i); undefined when it has the layout's ranks. */
export function adapterRankBelow(adapter: Adapter, layout: AdapterLayout): number | undefined {
  const rank = Math.max(...layout.map((m) => adapter.get(m.module)?.a.shape[0] ?? m.rank));
  const at = layoutAtRank(layout, rank);
  if (at === layout) return undefined;
  const off = at.find((m) => adapter.get(m.module)?.a.shape[0] !== m.rank);
  if (off !== undefined) throw new RangeError(`adapter of rank ${rank}: module ${off.module} has rank ${adapter.get(off.module)?.a.shape[0]}, expected ${off.rank}`);
  return rank;
}

/**
 * Copies of an adapter's standard LoRA factors, module by module: a Fed-SB module (A, B, R) as the
 * (A, B·R) it equals (what PEFT folders hold and evaluations read), every matrix and shape fresh, so
 * the caller may reuse or change the given buffers.
 */
export function copyStandardAdapter(adapter: Adapter): Map<string, LoraFactors> {
  const copy = (m: Matrix): Matrix<Float32Array> => ({ shape: [m.shape[0], m.shape[1]], data: Float32Array.from(m.data) });
  return new Map([...adapter].map(([k, given]) => {
    const f = effectiveFactors(given);
    return [k, { a: copy(f.a), b: copy(f.b) }];
  }));
}
