/**
 * PEFT's `adapter_config.json` for LoRA: parsing, writing (sorted keys, as PEFT writes it), and
 * PEFT's rules for which modules are targeted and which rank and alpha each one gets.
 *
 * Written configs use only fields known to PEFT since 0.7 (when `use_rslora` appeared), so older
 * and newer PEFT releases load them; fields read from a file that are not modelled here are kept
 * in `extra` and written back unchanged.
 */
import { FormatError } from './errors.js';

/** A LoRA adapter configuration, PEFT's LoraConfig in camelCase. */
export interface LoraConfig {
  readonly r: number;
  readonly loraAlpha: number;
  /** Scaling alpha/√r (rsLoRA) instead of alpha/r. */
  readonly useRslora: boolean;
  /** Base weights stored in × out (GPT-2 Conv1D). */
  readonly fanInFanOut: boolean;
  /** Module name suffixes (list) or a regular expression matched against the full module path. */
  readonly targetModules: readonly string[] | string | null;
  readonly loraDropout: number;
  readonly bias: 'none' | 'all' | 'lora_only';
  /** e.g. 'CAUSAL_LM', 'SEQ_CLS'; null for a plain PeftModel. */
  readonly taskType: string | null;
  readonly baseModelNameOrPath: string | null;
  /** Modules trained in full and saved beside the adapter (e.g. a classifier head). */
  readonly modulesToSave: readonly string[] | null;
  readonly initLoraWeights: boolean | string;
  readonly inferenceMode: boolean;
  /** Module-path pattern → rank, for modules whose rank differs from r. */
  readonly rankPattern: Readonly<Record<string, number>>;
  /** Module-path pattern → alpha, for modules whose alpha differs from loraAlpha. */
  readonly alphaPattern: Readonly<Record<string, number>>;
  readonly revision: string | null;
  readonly layersToTransform: readonly number[] | number | null;
  readonly layersPattern: readonly string[] | string | null;
  /** Fields of the file not modelled above, written back as they were. */
  readonly extra: Readonly<Record<string, unknown>>;
}

/** A complete config from the fields that matter; PEFT's defaults for the rest. */
export function loraConfig(fields: Partial<LoraConfig> & { r: number; loraAlpha: number }): LoraConfig {
  const given = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<LoraConfig>;
  return {
    useRslora: false,
    fanInFanOut: false,
    targetModules: null,
    loraDropout: 0,
    bias: 'none',
    taskType: null,
    baseModelNameOrPath: null,
    modulesToSave: null,
    initLoraWeights: true,
    inferenceMode: true,
    rankPattern: {},
    alphaPattern: {},
    revision: null,
    layersToTransform: null,
    layersPattern: null,
    extra: {},
    ...given,
    r: fields.r,
    loraAlpha: fields.loraAlpha,
  };
}

const KNOWN: Record<string, true> = {
  peft_type: true,
  r: true,
  lora_alpha: true,
  use_rslora: true,
  fan_in_fan_out: true,
  target_modules: true,
  lora_dropout: true,
  bias: true,
  task_type: true,
  base_model_name_or_path: true,
  modules_to_save: true,
  init_lora_weights: true,
  inference_mode: true,
  rank_pattern: true,
  alpha_pattern: true,
  revision: true,
  layers_to_transform: true,
  layers_pattern: true,
};

type Json = Record<string, unknown>;

function fail(file: string, message: string): never {
  throw new FormatError('PEFT_CONFIG_INVALID', message, { file });
}

function stringList(v: unknown, name: string, file: string): string[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) fail(file, `'${name}' must be a list of strings, got ${JSON.stringify(v)}`);
  return v as string[];
}

function numberMap(v: unknown, name: string, file: string, integers: boolean): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) fail(file, `'${name}' must be an object of numbers`);
  for (const [k, n] of Object.entries(v as Json)) {
    if (typeof n !== 'number' || !(n > 0) || (integers && !Number.isInteger(n))) {
      fail(file, `'${name}' entry '${k}' must be a positive ${integers ? 'integer' : 'number'}, got ${JSON.stringify(n)}`);
    }
  }
  return { ...(v as Record<string, number>) };
}

function layerList(v: unknown, file: string): number[] | number | null {
  if (v === undefined || v === null) return null;
  const isIndex = (n: unknown): boolean => typeof n === 'number' && Number.isInteger(n) && n >= 0;
  if (isIndex(v)) return v as number;
  if (Array.isArray(v) && v.every(isIndex)) return [...(v as number[])];
  fail(file, `'layers_to_transform' must be a layer index or a list of them, got ${JSON.stringify(v)}`);
}

function layersPatternOf(v: unknown, file: string): string[] | string | null {
  if (v === undefined || v === null || typeof v === 'string') return v ?? null;
  return stringList(v, 'layers_pattern', file);
}

/** Parses adapter_config.json contents; `file` names it in errors. Only LoRA is accepted. */
export function parseLoraConfig(json: unknown, file: string): LoraConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(file, 'must hold a JSON object');
  const o = json as Json;
  if (o.peft_type !== 'LORA') {
    throw new FormatError('PEFT_UNSUPPORTED', `peft_type ${JSON.stringify(o.peft_type)} is not supported (only "LORA")`, { file });
  }
  for (const flag of ['use_dora', 'lora_bias'] as const) {
    if (o[flag] === true) throw new FormatError('PEFT_UNSUPPORTED', `${flag} = true is not supported (plain LoRA only)`, { file });
  }
  if (typeof o.r !== 'number' || !Number.isInteger(o.r) || o.r <= 0) fail(file, `'r' must be a positive integer, got ${JSON.stringify(o.r)}`);
  const alpha = o.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0)) fail(file, `'lora_alpha' must be a positive number, got ${JSON.stringify(alpha)}`);
  const target = o.target_modules;
  const targetModules = typeof target === 'string' ? target : stringList(target, 'target_modules', file);
  const bias = o.bias ?? 'none';
  if (bias !== 'none' && bias !== 'all' && bias !== 'lora_only') fail(file, `'bias' must be "none", "all" or "lora_only", got ${JSON.stringify(bias)}`);
  const dropout = o.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || dropout < 0 || dropout >= 1) fail(file, `'lora_dropout' must be in [0, 1), got ${JSON.stringify(dropout)}`);
  const str = (k: string): string | null => (typeof o[k] === 'string' ? (o[k] as string) : null);
  const init = o.init_lora_weights ?? true;
  const extra: Json = Object.fromEntries(Object.entries(o).filter(([k]) => !Object.hasOwn(KNOWN, k)));
  const rankPattern = numberMap(o.rank_pattern, 'rank_pattern', file, true);
  const alphaPattern = numberMap(o.alpha_pattern, 'alpha_pattern', file, false);
  for (const pattern of [...(typeof targetModules === 'string' ? [targetModules] : []), ...Object.keys(rankPattern), ...Object.keys(alphaPattern)]) {
    try {
      new RegExp(pattern);
    } catch (cause) {
      fail(file, `pattern ${JSON.stringify(pattern)} is not a valid regular expression (${(cause as Error).message})`);
    }
  }
  return {
    r: o.r,
    loraAlpha: alpha,
    useRslora: o.use_rslora === true,
    fanInFanOut: o.fan_in_fan_out === true,
    targetModules,
    loraDropout: dropout,
    bias,
    taskType: str('task_type'),
    baseModelNameOrPath: str('base_model_name_or_path'),
    modulesToSave: stringList(o.modules_to_save, 'modules_to_save', file),
    initLoraWeights: typeof init === 'boolean' || typeof init === 'string' ? init : true,
    inferenceMode: o.inference_mode !== false,
    rankPattern,
    alphaPattern,
    revision: str('revision'),
    layersToTransform: layerList(o.layers_to_transform, file),
    layersPattern: layersPatternOf(o.layers_pattern, file),
    extra,
  };
}

/** adapter_config.json text as PEFT writes it: sorted keys, two-space indent. */
export function serializeLoraConfig(config: LoraConfig): string {
  const fields: Json = {
    ...config.extra,
    alpha_pattern: config.alphaPattern,
    base_model_name_or_path: config.baseModelNameOrPath,
    bias: config.bias,
    fan_in_fan_out: config.fanInFanOut,
    inference_mode: config.inferenceMode,
    init_lora_weights: config.initLoraWeights,
    layers_pattern: config.layersPattern,
    layers_to_transform: config.layersToTransform,
    lora_alpha: config.loraAlpha,
    lora_dropout: config.loraDropout,
    modules_to_save: config.modulesToSave,
    peft_type: 'LORA',
    r: config.r,
    rank_pattern: config.rankPattern,
    revision: config.revision,
    target_modules: config.targetModules,
    task_type: config.taskType,
    use_rslora: config.useRslora,
  };
  const sorted: Json = Object.fromEntries(Object.keys(fields).sort().map((k) => [k, fields[k]]));
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

/**
 * PEFT's target rule: a string is a full-match regex; a list matches a name or a `.name` suffix and,
 * when layers_to_transform is set, only modules whose layer index (the number after the
 * layers_pattern component, or after any component when there is none) is listed. (PEFT 0.8 and
 * later also keep a path the list names exactly whatever its layer; 0.7 does not. The trainer
 * refuses that case: src/model/targetModules.ts.)
 */
export function isTargetModule(config: Pick<LoraConfig, 'targetModules'> & Partial<Pick<LoraConfig, 'layersToTransform' | 'layersPattern'>>, modulePath: string): boolean {
  const t = config.targetModules;
  if (t === null) return true;
  if (typeof t === 'string') return new RegExp(`^(?:${t})$`).test(modulePath);
  if (!t.some((name) => modulePath === name || modulePath.endsWith(`.${name}`))) return false;
  const layers = config.layersToTransform ?? null;
  // PEFT treats an empty list as no restriction.
  if (layers === null || (Array.isArray(layers) && layers.length === 0)) return true;
  const layer = layerIndexOf(modulePath, config.layersPattern ?? null);
  return layer !== undefined && (typeof layers === 'number' ? layer === layers : layers.includes(layer));
}

/**
 * The layer index PEFT reads from a module path for layers_to_transform (`re.match` of
 * `.*?\.{pattern}\.(\d+)\.`: the first numbered component, so an expert index deeper in the path is
 * not taken for the layer; PEFT before 0.20 matched greedily, which agrees on paths with one number).
 */
export function layerIndexOf(modulePath: string, layersPattern: readonly string[] | string | null): number | undefined {
  const patterns = layersPattern === null || layersPattern.length === 0 ? ['[^.]*'] : typeof layersPattern === 'string' ? [layersPattern] : layersPattern;
  for (const pattern of patterns) {
    // As PEFT builds it (ungrouped), so a pattern means what it means there.
    const m = new RegExp(`^.*?\\.${pattern}\\.(\\d+)\\.`).exec(modulePath);
    if (m !== null) return Number(m[1]);
  }
  return undefined;
}

/** The modules PEFT's sequence classification model adds to modules_to_save (its task heads). */
export const PEFT_CLASSIFIER_MODULES: readonly string[] = ['classifier', 'score'];

/**
 * The modules_to_save PEFT writes for modules trained in full at `savedPaths` (module paths): for
 * SEQ_CLS, a module inside a task head is named by the head (`classifier.dense` → `classifier`)
 * and the list ends with PEFT's own `classifier`, `score` (it adds them on load, and wrapping
 * `classifier` would hide a listed `classifier.dense`: KeyError). Other tasks keep the paths.
 */
export function peftModulesToSave(savedPaths: readonly string[], taskType: string | null): string[] | null {
  if (taskType !== 'SEQ_CLS') return savedPaths.length > 0 ? [...new Set(savedPaths)] : null;
  const inHead = (p: string): boolean => PEFT_CLASSIFIER_MODULES.some((h) => p === h || p.startsWith(`${h}.`));
  return [...new Set([...savedPaths.filter((p) => !inHead(p)), ...PEFT_CLASSIFIER_MODULES])];
}

/** PEFT's pattern rule: the first key that matches the end of the module path after a dot. */
export function patternKey(patterns: Readonly<Record<string, number>>, modulePath: string): string | undefined {
  return Object.keys(patterns).find((key) => new RegExp(`^(.*\\.)?(?:${key})$`).test(modulePath));
}

/** The rank PEFT gives a module: rank_pattern's first match, else r. */
export function rankOf(config: Pick<LoraConfig, 'r' | 'rankPattern'>, modulePath: string): number {
  const key = patternKey(config.rankPattern, modulePath);
  return key === undefined ? config.r : config.rankPattern[key];
}

/** The alpha PEFT gives a module: alpha_pattern's first match, else lora_alpha. */
export function alphaOf(config: Pick<LoraConfig, 'loraAlpha' | 'alphaPattern'>, modulePath: string): number {
  const key = patternKey(config.alphaPattern, modulePath);
  return key === undefined ? config.loraAlpha : config.alphaPattern[key];
}

/** The LoRA scaling s = alpha / r (rsLoRA: alpha / √r): one definition, in src/core. */
export { loraScaling } from '../core/lora.js';
