/**
 * One client's update under client-level DP, relative to the global adapter (Ā_g, B̄_g) the round
 * started from, per module: ΔA = A_i − Ā_g, ΔB = B_i − B̄_g and, for FedEx-LoRA, the change of the
 * module's effective weight U = s·(B_i·A_i − B̄_g·Ā_g) (out × in, in `nn.Linear` orientation whatever
 * the stored layout). The vector clipped is the concatenation over modules of the parts the method
 * releases (`PrivateParts`), and its L2 norm is computed without forming U:
 *
 *   B_i A_i − B̄_g Ā_g = ΔB·A_i + B̄_g·ΔA = [ΔB | B̄_g]·[A_i ; ΔA] = P·Q,   ‖P·Q‖²_F = Σ (PᵀP) ∘ (Q·Qᵀ)
 *
 * two 2r × 2r Gram matrices in float64 (O((out + in)·r²); `factoredFrobeniusNorm`, deviation.ts), written
 * in the differences so that a small update next to a large global product keeps its digits. docs/math.md §4.
 */
import { factoredFrobeniusNorm } from '../deviation.js';
import { validateFactors, type LoraFactors, type LoraModuleSpec } from '../lora.js';
import { firstNonFinite } from '../tensor.js';

/**
 * What a method releases each round, and so what is clipped and noised: `fedex` ΔA, ΔB and U (the
 * base absorbs U − s·(B̄Ā − B̄_gĀ_g)); `fedit` ΔA and ΔB; `ffa` ΔB only (A is frozen and public).
 */
export type PrivateParts = 'fedex' | 'fedit' | 'ffa';

/** Squared L2 norms of one client's update of one module (float64). */
export interface ModuleUpdateNorms {
  /** ‖A_i − Ā_g‖²_F (0 for `ffa`). */
  readonly a: number;
  /** ‖B_i − B̄_g‖²_F. */
  readonly b: number;
  /** ‖s·(B_i A_i − B̄_g Ā_g)‖²_F (`fedex` only, else 0). */
  readonly product: number;
}

/** x − y elementwise in float64. */
function difference(x: Float32Array, y: Float32Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] - y[i];
  return out;
}

function sumSquares(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/**
 * ‖P·Q‖²_F for P = [ΔB | Bg] (out × 2r) and Q = [Ai ; ΔA] (2r × in), assembled in float64 from their
 * blocks, through the Gram identity of {@link factoredFrobeniusNorm}.
 */
function productNormSq(db: Float64Array, bg: Float32Array, ai: Float32Array, da: Float64Array, out: number, inF: number, r: number): number {
  const k = 2 * r;
  const p = new Float64Array(out * k);
  for (let o = 0; o < out; o++) {
    for (let j = 0; j < r; j++) {
      p[o * k + j] = db[o * r + j];
      p[o * k + r + j] = bg[o * r + j];
    }
  }
  const q = new Float64Array(k * inF);
  q.set(ai);
  q.set(da, r * inF);
  return factoredFrobeniusNorm({ shape: [out, k], data: p }, { shape: [k, inF], data: q }) ** 2;
}

/**
 * The squared norms of a client's update of one module against the round's global factors.
 * Validates both (shapes, float32, finite), naming the client and the module.
 */
export function moduleUpdateNorms(spec: LoraModuleSpec, scale: number, global: LoraFactors, client: LoraFactors, parts: PrivateParts, index: number, clientId?: string): ModuleUpdateNorms {
  checkGlobalFactors(spec, global);
  validateFactors(spec, client, index, clientId);
  if (!Number.isFinite(scale)) throw new RangeError(`module '${spec.name}': the LoRA scaling must be finite, got ${scale}`);
  const db = difference(client.b.data, global.b.data);
  const b = sumSquares(db);
  if (parts === 'ffa') return { a: 0, b, product: 0 };
  const da = difference(client.a.data, global.a.data);
  const a = sumSquares(da);
  if (parts === 'fedit') return { a, b, product: 0 };
  const product = scale * scale * productNormSq(db, global.b.data, client.a.data, da, spec.outFeatures, spec.inFeatures, spec.rank);
  return { a, b, product };
}

/** Throws unless the round's global factors have the module's shapes and finite float32 values. */
export function checkGlobalFactors(spec: LoraModuleSpec, global: LoraFactors): void {
  const where = `module '${spec.name}': the global adapter's`;
  for (const [name, m, rows, cols] of [['lora_A', global.a, spec.rank, spec.inFeatures], ['lora_B', global.b, spec.outFeatures, spec.rank]] as const) {
    if (m.shape[0] !== rows || m.shape[1] !== cols || m.data.length !== rows * cols) throw new RangeError(`${where} ${name} has shape [${m.shape.join(', ')}], expected [${rows}, ${cols}]`);
    if (!(m.data instanceof Float32Array)) throw new TypeError(`${where} ${name} must be float32 (Float32Array)`);
    const bad = firstNonFinite(m.data);
    if (bad >= 0) throw new RangeError(`${where} ${name} has a non-finite value ${m.data[bad]} at index ${bad}`);
  }
}

/** γ = min(1, C/‖v‖): the factor that scales an update of norm `norm` to at most `clip`. */
export function clipFactor(norm: number, clip: number): number {
  if (!(clip > 0 && Number.isFinite(clip))) throw new RangeError(`clipFactor: the clipping bound must be a finite number > 0, got ${clip}`);
  if (!(norm >= 0 && Number.isFinite(norm))) throw new RangeError(`clipFactor: the update norm must be a finite number ≥ 0, got ${norm}`);
  return norm > clip ? clip / norm : 1;
}
