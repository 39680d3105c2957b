/**
 * From an adapter's module path to the base checkpoint's weight, and the weight's layout.
 *
 * A PEFT module path is the module's name inside the Hugging Face model class
 * (`transformer.h.0.attn.c_attn` in GPT2LMHeadModel, `model.layers.0.self_attn.q_proj` in
 * LlamaForCausalLM); checkpoints may store the same weight with or without the wrapper prefix
 * (GPT-2 hub files hold `h.0.attn.c_attn.weight`). GPT-2's Conv1D stores its weight in × out; a
 * Linear stores out × in.
 */
import { FormatError } from './errors.js';

/** 'linear': weight is out × in (nn.Linear). 'conv1d': weight is in × out (GPT-2 Conv1D, PEFT fan_in_fan_out). */
export type { Layout as WeightLayout } from '../core/lora.js';
import { baseWeightShape, type Layout as WeightLayout } from '../core/lora.js';

/** GPT-2 modules built on transformers' Conv1D. Its lm_head and embeddings are not. */
export const GPT2_CONV1D_MODULES: readonly string[] = ['c_attn', 'c_proj', 'c_fc'];

/** Prefixes that Hugging Face model classes add around the base model, outermost first. */
const WRAPPER_PREFIXES = ['base_model.model.', 'transformer.', 'model.', 'bert.', 'roberta.'];

/**
 * The weight layout of a module: from PEFT's `fan_in_fan_out` flag, or from a `model_type`
 * (GPT-2's c_attn/c_proj/c_fc are Conv1D, everything else is Linear).
 */
export function inferLayout(source: string | boolean, modulePath?: string): WeightLayout {
  if (typeof source === 'boolean') return source ? 'conv1d' : 'linear';
  if (source !== 'gpt2') return 'linear';
  if (modulePath === undefined) return 'conv1d';
  const last = modulePath.slice(modulePath.lastIndexOf('.') + 1);
  return GPT2_CONV1D_MODULES.includes(last) ? 'conv1d' : 'linear';
}

/**
 * Checkpoint keys to try for a module's parameter, best first: as is, without a wrapper prefix,
 * with one added.
 */
export function baseKeyCandidates(modulePath: string, param = 'weight'): string[] {
  const path = modulePath.startsWith('base_model.model.') ? modulePath.slice('base_model.model.'.length) : modulePath;
  const paths = [path];
  for (const p of WRAPPER_PREFIXES) if (path.startsWith(p)) paths.push(path.slice(p.length));
  for (const p of WRAPPER_PREFIXES.slice(1)) paths.push(p + path);
  return [...new Set(paths)].map((p) => `${p}.${param}`);
}

function sharedTail(a: string[], b: string[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[a.length - 1 - n] === b[b.length - 1 - n]) n++;
  return n;
}

/** Up to `limit` keys that end like `wanted` (most shared trailing components first). */
function closeKeys(wanted: string, keys: readonly string[], limit = 5): string[] {
  const parts = wanted.split('.');
  return keys
    .map((k) => ({ k, score: sharedTail(parts, k.split('.')) }))
    .filter((s) => s.score >= 2)
    .sort((x, y) => y.score - x.score || Math.abs(x.k.length - wanted.length) - Math.abs(y.k.length - wanted.length))
    .slice(0, limit)
    .map((s) => s.k);
}

/**
 * The key of a module's parameter in a base checkpoint, trying the prefixes checkpoints differ
 * by. Throws KEY_NOT_FOUND listing close keys when nothing matches. `file` names the checkpoint.
 */
export function resolveBaseKey(modulePath: string, baseKeys: ReadonlySet<string> | Iterable<string>, options: { param?: string; file?: string } = {}): string {
  const keys: ReadonlySet<string> = baseKeys instanceof Set ? baseKeys : new Set(baseKeys);
  const candidates = baseKeyCandidates(modulePath, options.param ?? 'weight');
  const hit = candidates.find((c) => keys.has(c));
  if (hit !== undefined) return hit;
  const all = [...keys];
  const near = closeKeys(candidates[0], all);
  const hint = near.length > 0 ? `close keys: ${near.map((k) => `'${k}'`).join(', ')}` : `the checkpoint has ${all.length} keys, e.g. ${all.slice(0, 3).map((k) => `'${k}'`).join(', ')}`;
  throw new FormatError('KEY_NOT_FOUND', `no base weight for module '${modulePath}' (tried ${candidates.map((c) => `'${c}'`).join(', ')}); ${hint}`, options.file === undefined ? {} : { file: options.file });
}

/** The LoRA factor shapes of one module: A is r × in, B is out × r. */
export interface LoraShapes {
  readonly A: { readonly shape: readonly number[] };
  readonly B: { readonly shape: readonly number[] };
}

/**
 * Checks that a base weight fits a module's factors in the given layout: Linear W is
 * out × in = B.rows × A.cols, Conv1D W is in × out. Names the module, key and file on error, and
 * says so when the shape fits the other layout (a wrong fan_in_fan_out).
 */
export function checkBaseShape(
  baseShape: readonly number[],
  layout: WeightLayout,
  lora: LoraShapes,
  where: { modulePath: string; baseKey?: string; file?: string },
): void {
  const [r, inFeatures] = lora.A.shape;
  const [outFeatures, rB] = lora.B.shape;
  const ctx = { ...(where.file !== undefined ? { file: where.file } : {}), tensor: where.baseKey ?? where.modulePath };
  if (lora.A.shape.length !== 2 || lora.B.shape.length !== 2 || r !== rB) {
    throw new FormatError('BASE_SHAPE_MISMATCH', `module '${where.modulePath}': lora_A [${lora.A.shape.join(', ')}] and lora_B [${lora.B.shape.join(', ')}] are not r × in and out × r`, ctx);
  }
  const want = baseWeightShape(layout, inFeatures, outFeatures);
  if (baseShape.length === 2 && baseShape[0] === want[0] && baseShape[1] === want[1]) return;
  const other = baseWeightShape(layout === 'linear' ? 'conv1d' : 'linear', inFeatures, outFeatures);
  const fitsOther = baseShape.length === 2 && baseShape[0] === other[0] && baseShape[1] === other[1];
  throw new FormatError('BASE_SHAPE_MISMATCH',
    `module '${where.modulePath}': base weight has shape [${baseShape.join(', ')}], expected [${want.join(', ')}] ` +
      `(${layout === 'linear' ? 'Linear: out × in' : 'Conv1D: in × out'}, in = ${inFeatures}, out = ${outFeatures})` +
      (fitsOther ? `; it fits the ${layout === 'linear' ? 'Conv1D (fan_in_fan_out = true)' : 'Linear (fan_in_fan_out = false)'} layout instead` : ''), ctx);
}
