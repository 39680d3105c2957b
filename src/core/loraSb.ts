/**
 * LoRA-SB (Ponkshe et al. 2025), the adapter of Fed-SB (docs/math.md §1.5): the update of a module is
 * s·B·R·A with A (r × in) and B (out × r) frozen at a shared initialisation and only the r × r
 * matrix R trained. Averaging R is exact, Σ w_i B·R_i·A = B·(Σ w_i R_i)·A, and an upload is r² values
 * per module whatever out and in are.
 *
 * The initialisation here is a seeded one, not LoRA-SB's SVD of a first gradient step: A and B have
 * entries uniform in ±√(3/in) and ±√(3/out), so every row of A and every column of B has unit norm in
 * expectation (near-orthonormal for in, out ≫ r), and R = 0, so a fresh adapter leaves the model
 * unchanged. As a standard LoRA adapter the module is (A, B·R) (`effectiveFactors`): PEFT loads it.
 */
import { clientLabel, validateFactors, type LoraFactors, type LoraModuleSpec } from './lora.js';
import { createRng, fillUniform } from './random.js';
import { firstNonFinite, shapeString, type Matrix } from './tensor.js';

/** The shape facts of a module that its LoRA-SB factors need. */
export type SbModule = Pick<LoraModuleSpec, 'name' | 'rank' | 'inFeatures' | 'outFeatures'>;

/** FNV-1a of a string mixed with a 32-bit seed: one generator per (seed, module). */
function sbSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  const text = `fedsb:${seed >>> 0}:${name}`;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The seeded LoRA-SB factors of one module: A r × in uniform in ±√(3/in), B out × r uniform in
 * ±√(3/out), R = 0 (r × r). Deterministic in (seed, module name), whatever order modules come in.
 */
export function initSbFactors(seed: number, m: SbModule): LoraFactors {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`initSbFactors: seed must be an integer in 0..4294967295, got ${seed}`);
  for (const key of ['rank', 'inFeatures', 'outFeatures'] as const) {
    if (!Number.isInteger(m[key]) || m[key] <= 0) throw new RangeError(`initSbFactors: module '${m.name}': ${key} must be a positive integer, got ${m[key]}`);
  }
  const rng = createRng(sbSeed(seed, m.name));
  const ba = Math.sqrt(3 / m.inFeatures);
  const bb = Math.sqrt(3 / m.outFeatures);
  return {
    a: { shape: [m.rank, m.inFeatures], data: fillUniform(new Float32Array(m.rank * m.inFeatures), rng, -ba, ba) },
    b: { shape: [m.outFeatures, m.rank], data: fillUniform(new Float32Array(m.outFeatures * m.rank), rng, -bb, bb) },
    r: { shape: [m.rank, m.rank], data: new Float32Array(m.rank * m.rank) },
  };
}

/** B·R (out × r), accumulated in float64 and rounded to float32 once. */
export function sbProduct(b: Matrix, r: Matrix): Matrix<Float32Array> {
  const [out, rank] = b.shape;
  if (r.shape[0] !== rank || r.shape[1] !== rank) throw new RangeError(`sbProduct: B is ${shapeString(b.shape)}, R is ${shapeString(r.shape)}; R must be [${rank}, ${rank}]`);
  const data = new Float32Array(out * rank);
  const row = new Float64Array(rank);
  for (let o = 0; o < out; o++) {
    row.fill(0);
    for (let k = 0; k < rank; k++) {
      const bok = b.data[o * rank + k];
      if (bok === 0) continue;
      for (let j = 0; j < rank; j++) row[j] += bok * r.data[k * rank + j];
    }
    for (let j = 0; j < rank; j++) data[o * rank + j] = row[j];
  }
  return { shape: [out, rank], data };
}

/** The standard LoRA factors of a module: (A, B·R) for LoRA-SB factors, the factors themselves otherwise. */
export function effectiveFactors(f: LoraFactors): LoraFactors {
  return f.r === undefined ? f : { a: f.a, b: sbProduct(f.b, f.r) };
}

/**
 * Checks one client's LoRA-SB factors: A, B as `validateFactors`, and R present, r × r, float32 and
 * finite. Errors name the client, the module and the tensor.
 */
export function validateSbFactors(spec: LoraModuleSpec, f: LoraFactors, client: number, clientId?: string): void {
  validateFactors(spec, f, client, clientId);
  const where = `${clientLabel(client, clientId)}: module '${spec.name}'`;
  const r = f.r;
  if (r === undefined) throw new RangeError(`fedsb: ${where}: no lora_R (Fed-SB trains the r × r matrix R between the frozen B and A)`);
  if (r.shape.length !== 2 || r.shape[0] !== spec.rank || r.shape[1] !== spec.rank) throw new RangeError(`fedsb: ${where}: lora_R has shape ${shapeString(r.shape)}, expected [${spec.rank}, ${spec.rank}]`);
  if (!(r.data instanceof Float32Array) || r.data.length !== spec.rank * spec.rank) throw new RangeError(`fedsb: ${where}: lora_R must hold ${spec.rank * spec.rank} float32 values`);
  const bad = firstNonFinite(r.data);
  if (bad >= 0) throw new RangeError(`fedsb: ${where}: lora_R has a non-finite value ${r.data[bad]} at [${Math.floor(bad / spec.rank)}, ${bad % spec.rank}]`);
}
