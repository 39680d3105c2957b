/**
 * One module's round under client-level DP (docs/math.md §4): the clipped client updates are
 * averaged with a fixed denominator m and Gaussian noise N(0, (σC/m)²) is added to every coordinate
 * the method releases. With c_i = γ_i/m (γ_i the client's clipping factor over its whole update):
 *
 *   Ā = Ā_g + Σ c_i ΔA_i + N_A          B̄ = B̄_g + Σ c_i ΔB_i + N_B          (FFA: Ā = Ā_g, A is frozen)
 *   Ū = Σ c_i U_i + N_U                  U_i = s·(B_i A_i − B̄_g Ā_g)           (FedEx only)
 *   D = Ū − s·(B̄Ā − B̄_g Ā_g)             folded into W0 (layout-aware)
 *
 * so the global model after the round, W0 + D + s·B̄Ā = W0 + s·B̄_gĀ_g + Ū, is exactly the noisy mean
 * of the clipped updates of the effective weights. D is formed as one fused product plus the noise:
 *
 *   D = N_U + s·[c_1ΔB_1 | … | c_kΔB_k | −ΔB̄ | B̄_g] · [A_1 ; … ; A_k ; Ā ; Σ c_iΔA_i − ΔĀ]
 *
 * (ΔB̄ = B̄ − B̄_g and ΔĀ = Ā − Ā_g of the float32 factors actually sent), in the differences, so its
 * float32 round-off is relative to the round's update, not to the size of B̄Ā.
 */
import { validateFactors, type LoraFactors, type LoraModuleSpec } from '../lora.js';
import type { ProductBackend } from '../product.js';
import type { Matrix } from '../tensor.js';
import { checkGlobalFactors, type PrivateParts } from './clientUpdate.js';
import type { GaussianSource } from './noise.js';

/** Noise samples drawn at a time for the dense part. */
const NOISE_CHUNK = 1 << 16;

/** One module's private round. */
export interface PrivateModuleInput {
  readonly spec: LoraModuleSpec;
  /** LoRA scaling s of the module. */
  readonly scale: number;
  /** The global factors the round started from (Ā_g, B̄_g). */
  readonly global: LoraFactors;
  readonly clients: readonly LoraFactors[];
  /** c_i = γ_i / m per client (clipping factor over the fixed denominator). */
  readonly coefficients: ArrayLike<number>;
  /** Noise std per coordinate, σ·C/m (0: no noise). */
  readonly noiseStd: number;
  readonly parts: PrivateParts;
  /** Client ids for error messages, aligned with `clients`. */
  readonly clientIds?: readonly string[];
}

/** A module's new global state. */
export interface PrivateModuleAggregate {
  readonly factors: LoraFactors;
  /** FedEx: D (out × in, `nn.Linear` orientation) to add to W0 with scale 1; null for FedIT and FFA. */
  readonly baseUpdate: Matrix<Float32Array> | null;
}

/** 2^round(log2(max|x|)), or 1 for a zero matrix: a scale that divides x exactly (float32 keeps its bits). */
function powerOfTwoScale(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m === 0 ? 1 : 2 ** Math.round(Math.log2(m));
}

/** base + Σ c_i (x_i − base) + std·z, in float64, rounded once to float32. Also returns Σ c_i (x_i − base). */
function noisyMean(base: Float32Array, xs: readonly Float32Array[], c: ArrayLike<number>, std: number, noise: GaussianSource): { value: Float32Array; mean: Float64Array } {
  const mean = new Float64Array(base.length);
  xs.forEach((x, i) => {
    const w = c[i];
    if (w === 0) return;
    for (let j = 0; j < mean.length; j++) mean[j] += w * (x[j] - base[j]);
  });
  const z = new Float64Array(base.length);
  if (std > 0) noise.fill(z);
  const value = new Float32Array(base.length);
  for (let j = 0; j < value.length; j++) value[j] = base[j] + mean[j] + std * z[j];
  return { value, mean };
}

function checkInput(input: PrivateModuleInput): void {
  const { spec, clients, coefficients, noiseStd } = input;
  checkGlobalFactors(spec, input.global);
  if (clients.length !== coefficients.length) throw new RangeError(`module '${spec.name}': ${clients.length} clients but ${coefficients.length} coefficients`);
  clients.forEach((f, i) => validateFactors(spec, f, i, input.clientIds?.[i]));
  for (let i = 0; i < coefficients.length; i++) {
    const c = coefficients[i];
    if (!(c >= 0 && c <= 1)) throw new RangeError(`module '${spec.name}': the coefficient of client ${i} must be in [0, 1], got ${c}`);
  }
  if (!(noiseStd >= 0 && Number.isFinite(noiseStd))) throw new RangeError(`module '${spec.name}': the noise std must be a finite number ≥ 0, got ${noiseStd}`);
  if (!Number.isFinite(input.scale)) throw new RangeError(`module '${spec.name}': the LoRA scaling must be finite, got ${input.scale}`);
}

/** Aggregates one module under DP; the noise comes from `noise`, the fused product from `backend`. */
export async function privateModuleAggregate(input: PrivateModuleInput, noise: GaussianSource, backend: ProductBackend): Promise<PrivateModuleAggregate> {
  checkInput(input);
  const { spec, global, clients, coefficients: c, noiseStd: std, parts } = input;
  const r = spec.rank;
  const out = spec.outFeatures;
  const inF = spec.inFeatures;
  const bNew = noisyMean(global.b.data, clients.map((f) => f.b.data), c, std, noise);
  const aNew = parts === 'ffa'
    ? { value: Float32Array.from(global.a.data), mean: new Float64Array(global.a.data.length) }
    : noisyMean(global.a.data, clients.map((f) => f.a.data), c, std, noise);
  const factors: LoraFactors = { a: { shape: [r, inF], data: aNew.value }, b: { shape: [out, r], data: bNew.value } };
  if (parts !== 'fedex') return { factors, baseUpdate: null };

  const k = clients.length;
  const inner = (k + 2) * r;
  const p = new Float32Array(out * inner);
  const q = new Float32Array(inner * inF);
  const gb = global.b.data;
  const ga = global.a.data;
  // Client i's block is (c_i·e_i·ΔB_i)·(A_i/e_i) with e_i a power of two near max|A_i| (exact scaling):
  // a clipped absurd update (c_i ≈ 1e-77 against entries ≈ 1e38) keeps both float32 factors normal.
  const e = clients.map((f) => powerOfTwoScale(f.a.data));
  for (let o = 0; o < out; o++) {
    const row = o * inner;
    for (let i = 0; i < k; i++) {
      const bi = clients[i].b.data;
      const w = c[i] * e[i];
      for (let j = 0; j < r; j++) p[row + i * r + j] = w * (bi[o * r + j] - gb[o * r + j]);
    }
    for (let j = 0; j < r; j++) {
      p[row + k * r + j] = -(bNew.value[o * r + j] - gb[o * r + j]);
      p[row + (k + 1) * r + j] = gb[o * r + j];
    }
  }
  for (let i = 0; i < k; i++) {
    const ai = clients[i].a.data;
    const base = i * r * inF;
    for (let x = 0; x < ai.length; x++) q[base + x] = ai[x] / e[i];
  }
  q.set(aNew.value, k * r * inF);
  const tail = (k + 1) * r * inF;
  for (let x = 0; x < r * inF; x++) q[tail + x] = aNew.mean[x] - (aNew.value[x] - ga[x]);
  const d = new Float32Array(out * inF);
  if (std > 0) {
    // In chunks: the float64 samples of a large module never exist all at once.
    const z = new Float64Array(Math.min(d.length, NOISE_CHUNK));
    for (let x0 = 0; x0 < d.length; x0 += z.length) {
      const n = Math.min(z.length, d.length - x0);
      const part = n === z.length ? z : z.subarray(0, n);
      noise.fill(part);
      for (let x = 0; x < n; x++) d[x0 + x] = std * part[x];
    }
  }
  const baseUpdate: Matrix<Float32Array> = { shape: [out, inF], data: d };
  await backend.addScaledProduct(baseUpdate, 'linear', { shape: [out, inner], data: p }, { shape: [inner, inF], data: q }, input.scale);
  return { factors, baseUpdate };
}
