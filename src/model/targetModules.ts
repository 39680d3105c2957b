/**
 * PEFT's `target_modules` rule: which modules of a model get a LoRA adapter.
 *
 * - a list of names: a module path matches a name when it equals it or ends with `.name`
 *   (`c_attn` matches `transformer.h.0.attn.c_attn`; `mlp.c_proj` matches only the MLP's c_proj);
 * - a single entry that is not a plain name (it holds characters other than letters, digits, `_`,
 *   `.`) is a regular expression matched against the whole path, as PEFT does with `re.fullmatch`
 *   when target_modules is a string;
 * - `all-linear` (PEFT's shorthand) selects every candidate the architecture offers (its linear
 *   layers, never the output head);
 * - `layers_to_transform` (+ `layers_pattern`) keeps the selected modules of those layers only;
 * - each module's rank and alpha: `rank_pattern` / `alpha_pattern`, else `r` / `lora_alpha`
 *   (docs/models.md, "PEFT adapters").
 */
import { loraScaling } from '../core/lora.js';
import { layerIndexOf, patternKey } from '../formats/peftConfig.js';
import { ModelError } from './errors.js';
import type { LoraSettings } from './types.js';

/** PEFT's shorthand for every linear layer except the output head. */
export const ALL_LINEAR = 'all-linear';

const PLAIN_NAME = /^[A-Za-z0-9_.]+$/;

/** True when `s` is a module name or dotted suffix rather than a regular expression. */
export function isPlainModuleName(s: string): boolean {
  return PLAIN_NAME.test(s);
}

function describe(targets: readonly string[]): string {
  return `[${targets.map((t) => `'${t}'`).join(', ')}]`;
}

/**
 * A predicate over module paths for PEFT's `target_modules`. Throws INVALID_TARGET_PATTERN when
 * a single regular-expression entry does not compile.
 */
export function targetMatcher(targets: readonly string[]): (path: string) => boolean {
  if (targets.length === 1 && targets[0] === ALL_LINEAR) return () => true;
  if (targets.length === 1 && !isPlainModuleName(targets[0])) {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targets[0]})$`);
    } catch (cause) {
      throw new ModelError('INVALID_TARGET_PATTERN', `target_modules: '${targets[0]}' is not a valid regular expression (${(cause as Error).message})`, { cause });
    }
    return (path) => re.test(path);
  }
  return (path) => targets.some((name) => path === name || path.endsWith(`.${name}`));
}

/** The distinct last components of module paths, in first-seen order (`c_attn`, `c_proj`, …). */
export function moduleNames(paths: readonly string[]): string[] {
  return [...new Set(paths.map((p) => p.slice(p.lastIndexOf('.') + 1)))];
}

/**
 * The candidate module paths that `targets` select, in the candidates' order. Throws
 * TARGET_NOT_FOUND naming the targets and the candidate module names when none matches, as PEFT
 * refuses a config that adapts nothing.
 */
export function selectTargetModules(candidates: readonly string[], targets: readonly string[]): string[] {
  const match = targetMatcher(targets);
  const selected = candidates.filter(match);
  if (selected.length === 0) {
    const names = moduleNames(candidates);
    throw new ModelError('TARGET_NOT_FOUND',
      `target_modules ${describe(targets)} matched none of the model's ${candidates.length} adaptable modules; ` +
        `module names: ${names.join(', ') || '(none)'}${candidates.length > 0 ? ` (full paths look like '${candidates[0]}')` : ''}`);
  }
  return selected;
}

/**
 * The `target_modules` to write into a PEFT adapter_config.json for an adapter whose modules are
 * `selected` (resolved paths), given what was asked for. A list of plain names is kept: PEFT applies
 * the same suffix rule, so it selects the same modules. `all-linear` and a regular expression are
 * resolved: the adapter names its modules' full paths, which PEFT matches exactly (its `all-linear`
 * also excludes other layers than ours on some architectures, and an adapter should not depend on
 * a rule being re-evaluated).
 */
export function peftTargetModules(requested: readonly string[], selected: readonly string[]): string[] {
  if (requested.length > 0 && requested.every(isPlainModuleName) && !requested.includes(ALL_LINEAR)) return [...requested];
  return [...selected];
}

/** What PEFT gives one adapted module: its rank, alpha and scaling s = alpha / r (rsLoRA: alpha / √r). */
export interface ModuleLora {
  readonly rank: number;
  readonly alpha: number;
  readonly scaling: number;
}

/** Settings fields that decide a module's rank and scaling. */
export type ModuleLoraSettings = Pick<LoraSettings, 'r' | 'alpha' | 'useRslora' | 'rankPattern' | 'alphaPattern'>;

/**
 * The rank, alpha and scaling PEFT gives the module at `path`: rank_pattern's first key that matches
 * the end of the path at a dot (`(.*\.)?(key)$`, PEFT's get_pattern_key), else r; alpha_pattern
 * likewise, else alpha; use_rslora divides by √rank instead of rank, per module.
 */
export function moduleLora(lora: ModuleLoraSettings, path: string): ModuleLora {
  const rankKey = lora.rankPattern === undefined ? undefined : patternKey(lora.rankPattern, path);
  const alphaKey = lora.alphaPattern === undefined ? undefined : patternKey(lora.alphaPattern, path);
  const rank = rankKey === undefined ? lora.r : lora.rankPattern![rankKey];
  const alpha = alphaKey === undefined ? lora.alpha : lora.alphaPattern![alphaKey];
  return { rank, alpha, scaling: loraScaling(alpha, rank, lora.useRslora) };
}

/** True when layers_to_transform restricts anything (PEFT treats null and an empty list as no restriction). */
function restrictsLayers(layers: LoraSettings['layersToTransform']): layers is readonly number[] | number {
  return layers !== undefined && layers !== null && (typeof layers === 'number' || layers.length > 0);
}

function patternError(message: string): ModelError {
  return new ModelError('LORA_PATTERN_INVALID', message);
}

/**
 * `selected` (paths target_modules chose among `candidates`) kept to the layers of
 * layers_to_transform, as PEFT's check_target_module_exists does: the layer index is the number after
 * the first `.{layers_pattern}.` component (any component when there is no layers_pattern). Throws
 * LORA_PATTERN_INVALID for an index that is not a layer of the model, a regular-expression
 * target_modules (PEFT refuses the pair), a path target_modules names exactly in a layer the list
 * leaves out (PEFT ≥ 0.8 adapts it, 0.7 does not), or a restriction that leaves no module.
 */
function restrictToLayers(candidates: readonly string[], selected: readonly string[], lora: Pick<LoraSettings, 'targetModules' | 'layersToTransform' | 'layersPattern'>): string[] {
  const layers = lora.layersToTransform;
  if (!restrictsLayers(layers)) return [...selected];
  const shown = JSON.stringify(layers);
  const targets = lora.targetModules;
  if (targets.length === 1 && !isPlainModuleName(targets[0]) && targets[0] !== ALL_LINEAR) {
    throw patternError(`layers_to_transform ${shown} cannot restrict a regular-expression target_modules '${targets[0]}' (PEFT refuses the pair): list module names instead`);
  }
  const pattern = lora.layersPattern ?? null;
  const where = pattern === null || pattern.length === 0 ? '' : ` after layers_pattern ${JSON.stringify(pattern)}`;
  const depth = new Set(candidates.map((p) => layerIndexOf(p, pattern)).filter((i): i is number => i !== undefined));
  if (depth.size === 0) {
    throw patternError(`layers_to_transform ${shown}: no module path has a layer index${where} (paths look like '${candidates[0] ?? ''}')`);
  }
  const wanted = typeof layers === 'number' ? [layers] : layers;
  const missing = wanted.filter((i) => !depth.has(i));
  if (missing.length > 0) {
    const known = [...depth].sort((a, b) => a - b);
    throw patternError(
      `layers_to_transform ${shown} names layer${missing.length === 1 ? '' : 's'} ${missing.join(', ')}, but the model's adaptable modules sit in ${known.length} layer${known.length === 1 ? '' : 's'} (${known[0]}–${
        known[known.length - 1]
      })${where}`,
    );
  }
  const exact = new Set(targets);
  const kept = selected.filter((p) => {
    const layer = layerIndexOf(p, pattern);
    const inLayers = layer !== undefined && wanted.includes(layer);
    if (!inLayers && exact.has(p)) {
      throw patternError(`target_modules names '${p}' exactly and layers_to_transform ${shown}${where} leaves its layer out: PEFT 0.8 and later adapt it, PEFT 0.7 does not; name it in neither or in both`);
    }
    return inLayers;
  });
  if (kept.length === 0) throw patternError(`layers_to_transform ${shown}${where} keeps none of the ${selected.length} modules target_modules ${describe(targets)} selects`);
  return kept;
}

/**
 * Throws LORA_PATTERN_INVALID for a rank_pattern or alpha_pattern key that matches none of the adapted
 * modules `paths` (PEFT would ignore it: the adapter would not be what its config says), a rank that is
 * not a positive integer, or an alpha that is not a finite number; INVALID_TARGET_PATTERN for a key that
 * is not a regular expression.
 */
export function checkLoraPatterns(paths: readonly string[], lora: Pick<LoraSettings, 'rankPattern' | 'alphaPattern'>): void {
  for (const [field, patterns] of [['rank_pattern', lora.rankPattern], ['alpha_pattern', lora.alphaPattern]] as const) {
    for (const [key, value] of Object.entries(patterns ?? {})) {
      if (field === 'rank_pattern' ? !(Number.isInteger(value) && value > 0) : !Number.isFinite(value)) {
        throw patternError(`${field} '${key}': ${field === 'rank_pattern' ? 'a rank must be a positive integer' : 'an alpha must be a finite number'}, got ${JSON.stringify(value)}`);
      }
      try {
        new RegExp(key);
      } catch (cause) {
        throw new ModelError('INVALID_TARGET_PATTERN', `${field}: '${key}' is not a valid regular expression (${(cause as Error).message})`, { cause });
      }
      if (!paths.some((p) => patternKey({ [key]: value }, p) !== undefined)) {
        throw patternError(`${field} key '${key}' matches none of the ${paths.length} adapted modules (PEFT matches a key against the end of a module path at a dot; paths look like '${paths[0] ?? ''}')`);
      }
    }
  }
}

/**
 * The module paths among `candidates` that LoRA adapts, as PEFT chooses them: target_modules, then
 * layers_to_transform; the rank and alpha patterns are checked against the result (see
 * {@link checkLoraPatterns}).
 */
export function selectLoraModules(candidates: readonly string[], lora: Pick<LoraSettings, 'targetModules' | 'layersToTransform' | 'layersPattern' | 'rankPattern' | 'alphaPattern'>): string[] {
  const kept = restrictToLayers(candidates, selectTargetModules(candidates, lora.targetModules), lora);
  checkLoraPatterns(kept, lora);
  return kept;
}
