/**
 * PEFT's default LoRA initialisation (`init_lora_weights=True`): A by `kaiming_uniform_(a=√5)`,
 * i.e. uniform in ±1/√in_features, and B zeros, so a fresh adapter leaves the model unchanged.
 *
 * Every module draws from its own generator, seeded by the run seed and the module path: the
 * same seed gives the same A on every client whatever order the modules are listed in, which
 * FFA-LoRA needs (A stays frozen at a shared initialisation).
 */
import { createRng, kaimingUniform } from '../core/random.js';
import type { Rng } from '../core/random.js';
import type { LoraFactors } from '../core/lora.js';
import { initSbFactors } from '../core/loraSb.js';
import { moduleLora } from './targetModules.js';
import type { ModuleLoraSettings } from './targetModules.js';

/** Shape facts of one module to initialise. */
export interface LoraInitModule {
  /** PEFT module path, e.g. `transformer.h.0.attn.c_attn`. */
  readonly path: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** The module's own rank (PEFT rank_pattern) when it is not the adapter's r. */
  readonly rank?: number;
}

/** A 32-bit seed for one module from the run seed and the module path (FNV-1a, then mixed with the seed). */
export function moduleSeed(seed: number, path: string): number {
  if (!Number.isFinite(seed)) throw new RangeError(`moduleSeed: seed must be a finite number, got ${seed}`);
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193);
  h ^= Math.trunc(seed) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** One module's factors: A `[r, in]` Kaiming-uniform (bound 1/√in), B `[out, r]` zeros. */
export function initLoraFactors(inFeatures: number, outFeatures: number, r: number, rng: Rng): LoraFactors {
  if (!Number.isInteger(r) || r <= 0) throw new RangeError(`initLoraFactors: rank r must be a positive integer, got ${r}`);
  if (!Number.isInteger(outFeatures) || outFeatures <= 0) throw new RangeError(`initLoraFactors: outFeatures must be a positive integer, got ${outFeatures}`);
  return {
    a: kaimingUniform(r, inFeatures, rng, Math.sqrt(5)),
    b: { shape: [outFeatures, r], data: new Float32Array(outFeatures * r) },
  };
}

/** Fresh factors for every module (rank `m.rank`, else `r`), keyed by module path; deterministic in (seed, path). */
export function initLoraAdapters(modules: readonly LoraInitModule[], r: number, seed: number): Map<string, LoraFactors> {
  const out = new Map<string, LoraFactors>();
  for (const m of modules) out.set(m.path, initLoraFactors(m.inFeatures, m.outFeatures, m.rank ?? r, createRng(moduleSeed(seed, m.path))));
  return out;
}

/**
 * Fresh factors for a built model's adapted modules, each at the rank the settings give it
 * (rank_pattern, else r); with `loraSb` the seeded LoRA-SB factors (A, B, R = 0; core/loraSb.ts).
 */
export function initAdaptedModules(modules: readonly LoraInitModule[], lora: ModuleLoraSettings & { readonly loraSb?: boolean }, seed: number): Map<string, LoraFactors> {
  if (lora.loraSb === true) {
    return new Map(modules.map((m) => [m.path, initSbFactors(seed >>> 0, { name: m.path, rank: moduleLora(lora, m.path).rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures })]));
  }
  return initLoraAdapters(modules.map((m) => ({ path: m.path, inFeatures: m.inFeatures, outFeatures: m.outFeatures, rank: moduleLora(lora, m.path).rank })), lora.r, seed);
}
