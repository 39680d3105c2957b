/**
 * PEFT's `target_modules` rule: which modules of a model get a LoRA adapter.
 *
 * - a list of names: a module path matches a name when it equals it or ends with `.name`
 *   (`c_attn` matches `transformer.h.0.attn.c_attn`; `mlp.c_proj` matches only the MLP's c_proj);
 * - a single entry that is not a plain name (it holds characters other than letters, digits, `_`,
 *   `.`) is a regular expression matched against the whole path, as PEFT does with `re.fullmatch`
 *   when target_modules is a string;
 * - `all-linear` (PEFT's shorthand) selects every candidate the architecture offers (its linear
 *   layers, never the output head).
 */
import { ModelError } from './errors.js';

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

/** True when PEFT would adapt the module at `path` for these `target_modules`. */
export function matchesTarget(path: string, targets: readonly string[]): boolean {
  return targetMatcher(targets)(path);
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
