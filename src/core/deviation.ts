/**
 * The deviation of plain averaging, the paper's figure of merit: per module ‖s·ΔR‖_F and the
 * relative deviation ‖s·ΔR‖_F / ‖s·Σ w_i B_i A_i‖_F (0/0 := 0), computed without the dense out × in
 * product through Gram matrices: ‖P·Q‖_F² = trace((PᵀP)(QQᵀ)) = Σ_ij (PᵀP)_ij (QQᵀ)_ij, both n × n
 * with n = k·r (+ r). Plus per-layer and per-module-type summaries.
 */
import { frobeniusNorm, shapeString } from './tensor.js';
import type { Matrix } from './tensor.js';
import type { LoraFactors } from './lora.js';
import { materializeUpdate, type ProductBackend } from './product.js';
import { factorResidual, preferFactored } from './residual.js';
import { classifyModule, layerIndex } from './moduleNames.js';
import type { ModuleType } from './moduleNames.js';

/**
 * The Gram matrix m·mᵀ (rows × rows, float64) of a row-major rows × cols matrix. Register-blocked
 * (2 × 4 dot products per sweep over the columns): about 3× faster than one dot product at a time.
 */
export function gramOfRows(data: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const g = new Float64Array(rows * rows);
  const last = rows - 1;
  const s = new Float64Array(8);
  for (let i = 0; i < rows; i += 2) {
    // Past the last row the block repeats it; those duplicate sums are computed but not stored.
    const a0 = i * cols;
    const a1 = Math.min(i + 1, last) * cols;
    for (let j = i; j < rows; j += 4) {
      const b0 = j * cols;
      const b1 = Math.min(j + 1, last) * cols;
      const b2 = Math.min(j + 2, last) * cols;
      const b3 = Math.min(j + 3, last) * cols;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let x = 0; x < cols; x++) {
        const x0 = data[a0 + x];
        const x1 = data[a1 + x];
        const y0 = data[b0 + x];
        const y1 = data[b1 + x];
        const y2 = data[b2 + x];
        const y3 = data[b3 + x];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
      }
      s[0] = s00;
      s[1] = s01;
      s[2] = s02;
      s[3] = s03;
      s[4] = s10;
      s[5] = s11;
      s[6] = s12;
      s[7] = s13;
      for (let u = 0; u < 2 && i + u < rows; u++) {
        for (let v = 0; v < 4 && j + v < rows; v++) {
          g[(i + u) * rows + j + v] = s[u * 4 + v];
          g[(j + v) * rows + i + u] = s[u * 4 + v];
        }
      }
    }
  }
  return g;
}

/** The Gram matrix mᵀm (cols × cols, float64) of a row-major rows × cols matrix. */
export function gramOfColumns(data: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let o = 0; o < rows; o++) for (let j = 0; j < cols; j++) t[j * rows + o] = data[o * cols + j];
  return gramOfRows(t, cols, rows);
}

function hadamardSum(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** ‖P·Q‖_F without forming P·Q (Gram identity, float64): the norm of a client's update under DP (privacy/clientUpdate.ts). */
export function factoredFrobeniusNorm(p: Matrix, q: Matrix): number {
  const [rows, n] = p.shape;
  if (q.shape[0] !== n) throw new RangeError(`factoredFrobeniusNorm: P is ${shapeString(p.shape)} and Q is ${shapeString(q.shape)}: inner sizes differ`);
  if (n === 0) return 0;
  const sq = hadamardSum(gramOfColumns(p.data, rows, n), gramOfRows(q.data, n, q.shape[1]));
  // Round-off can push a vanishing norm slightly below zero.
  return Math.sqrt(Math.max(0, sq));
}

/** Norms of one module's update and of what averaging loses. */
export interface DeviationNorms {
  /** ‖s·ΔR‖_F with ΔR = Σ w_i B_i A_i − B̄Ā. */
  readonly deviationNorm: number;
  /** ‖s·Σ w_i B_i A_i‖_F, the ideal (exact) update. */
  readonly idealUpdateNorm: number;
  /** deviationNorm / idealUpdateNorm, 0 when both are 0. */
  readonly relativeDeviation: number;
}

/** deviation / ideal with 0/0 := 0 (and x/0 = Infinity for x > 0: a loss with no ideal update). */
export function relativeDeviation(deviation: number, ideal: number): number {
  if (deviation === 0) return 0;
  return ideal === 0 ? Infinity : deviation / ideal;
}

/**
 * Deviation norms of one module, in float64 from the clients' factors, their normalised weights and
 * the global Ā, B̄ actually sent (float32). ΔR is taken exactly as defined, including B̄'s rounding:
 * ΔR = P·Q with P = [w_1 B_1 | … | w_k B_k | Σ w_i B_i − B̄] and Q = [A_1 − Ā; …; A_k − Ā; Ā]. The
 * ideal update Σ w_i B_i A_i uses the client blocks of P and Gram entries A_i·A_jᵀ, which follow from
 * QQᵀ since A_i = (A_i − Ā) + Ā: two Gram matrices in all, O((out + in)·n²) with n = (k + 1)·r.
 */
export function deviationNorms(clients: readonly LoraFactors[], weights: ArrayLike<number>, abar: Matrix, bbar: Matrix, scale: number): DeviationNorms {
  if (clients.length === 0 || clients.length !== weights.length) {
    throw new RangeError(`deviationNorms: ${clients.length} clients and ${weights.length} weights`);
  }
  const [r, inF] = abar.shape;
  const out = bbar.shape[0];
  if (bbar.shape[1] !== r) throw new RangeError(`deviationNorms: B̄ is ${shapeString(bbar.shape)} but Ā is ${shapeString(abar.shape)}`);
  const active = clients.map((_, i) => i).filter((i) => weights[i] !== 0);
  const last = active.length * r;
  const n = last + r;
  // Pᵀ (n × out) rather than P, so that both Gram matrices are row Gram matrices.
  const pt = new Float64Array(n * out);
  const q = new Float64Array(n * inF);
  active.forEach((i, slot) => {
    const { a, b } = clients[i];
    if (a.shape[0] !== r || a.shape[1] !== inF || b.shape[0] !== out || b.shape[1] !== r) {
      throw new RangeError(`deviationNorms: client ${i} has lora_A ${shapeString(a.shape)} and lora_B ${shapeString(b.shape)}, expected [${r}, ${inF}] and [${out}, ${r}]`);
    }
    const w = weights[i];
    for (let o = 0; o < out; o++) {
      for (let j = 0; j < r; j++) {
        const v = w * b.data[o * r + j];
        pt[(slot * r + j) * out + o] = v;
        pt[(last + j) * out + o] += v;
      }
    }
    const off = slot * r * inF;
    for (let x = 0; x < r * inF; x++) q[off + x] = a.data[x] - abar.data[x];
  });
  for (let o = 0; o < out; o++) for (let j = 0; j < r; j++) pt[(last + j) * out + o] -= bbar.data[o * r + j];
  q.set(abar.data, last * inF);
  const gp = gramOfRows(pt, n, out);
  const gq = gramOfRows(q, n, inF);
  const dev = Math.abs(scale) * Math.sqrt(Math.max(0, hadamardSum(gp, gq)));
  // A_i·A_jᵀ = (Q_i + Ā)(Q_j + Ā)ᵀ, entry by entry from QQᵀ's blocks.
  let ideal2 = 0;
  for (let u = 0; u < last; u++) {
    const ua = last + (u % r);
    for (let v = 0; v < last; v++) {
      const va = last + (v % r);
      const ga = gq[u * n + v] + gq[u * n + va] + gq[ua * n + v] + gq[ua * n + va];
      ideal2 += gp[u * n + v] * ga;
    }
  }
  const ideal = Math.abs(scale) * Math.sqrt(Math.max(0, ideal2));
  return { deviationNorm: dev, idealUpdateNorm: ideal, relativeDeviation: relativeDeviation(dev, ideal) };
}

/** One module's round for `deviationNormsBounded`. */
export interface BoundedDeviationInput {
  readonly clients: readonly LoraFactors[];
  /** Normalised weights aligned with `clients`. */
  readonly weights: ArrayLike<number>;
  /** The global Ā, B̄ actually sent (float32). */
  readonly abar: Matrix<Float32Array>;
  readonly bbar: Matrix<Float32Array>;
  readonly scale: number;
  /** s·ΔR (out × in, `linear` orientation) when the caller already formed it (a dense FedEx residual). */
  readonly scaledResidual?: Matrix<Float32Array>;
}

/**
 * `deviationNorms` at a cost bounded by one dense product: the Gram route costs O((out + in)·(k·r)²)
 * in TypeScript — right for a few clients, minutes for a hundred. When the residual is bigger
 * factored than dense (the test that also picks its wire form) the norms come from the dense s·ΔR
 * instead: the one given, or one fused product through `backend` (onnxruntime in the coordinator);
 * the ideal update s·Σ w_i B_i A_i = s·ΔR + s·B̄Ā is one rank-r product more.
 */
export async function deviationNormsBounded(input: BoundedDeviationInput, backend: ProductBackend): Promise<DeviationNorms> {
  const { clients, weights, abar, bbar, scale } = input;
  const [r, inF] = abar.shape;
  const out = bbar.shape[0];
  let active = 0;
  for (let i = 0; i < weights.length; i++) if (weights[i] !== 0) active++;
  if (input.scaledResidual === undefined && preferFactored(out, inF, active, r, 'stacked')) {
    return deviationNorms(clients, weights, abar, bbar, scale);
  }
  let d = input.scaledResidual;
  if (d === undefined) {
    const { p, q } = factorResidual(clients, weights, abar, 'stacked');
    d = await materializeUpdate(backend, { form: 'factored', p, q, scale, layout: 'linear' });
  } else if (d.shape[0] !== out || d.shape[1] !== inF) {
    throw new RangeError(`deviationNormsBounded: scaledResidual is ${shapeString(d.shape)}, expected [${out}, ${inF}]`);
  }
  const deviation = frobeniusNorm(d.data);
  const ideal: Matrix<Float32Array> = { shape: [out, inF], data: Float32Array.from(d.data) };
  await backend.addScaledProduct(ideal, 'linear', bbar, abar, scale);
  const idealNorm = frobeniusNorm(ideal.data);
  return { deviationNorm: deviation, idealUpdateNorm: idealNorm, relativeDeviation: relativeDeviation(deviation, idealNorm) };
}

/** A module's deviation with what it is, for reports. */
export interface ModuleDeviation extends DeviationNorms {
  readonly module: string;
  readonly moduleType: ModuleType;
  readonly layer: number | null;
}

/** Attaches the module's name, type and layer to its norms. */
export function moduleDeviation(module: string, norms: DeviationNorms): ModuleDeviation {
  return { module, moduleType: classifyModule(module), layer: layerIndex(module), ...norms };
}

/** Deviation of a group of modules: norms combined as √Σ‖·‖², plus the spread of the per-module ratios. */
export interface GroupDeviation extends DeviationNorms {
  readonly modules: number;
  readonly maxRelativeDeviation: number;
  readonly meanRelativeDeviation: number;
}

/** Per-round report: all modules, by module type and by layer (modules without a layer under null). */
export interface DeviationSummary {
  readonly total: GroupDeviation;
  readonly byType: readonly (GroupDeviation & { readonly moduleType: ModuleType })[];
  readonly byLayer: readonly (GroupDeviation & { readonly layer: number | null })[];
}

function group(items: readonly ModuleDeviation[]): GroupDeviation {
  let dev2 = 0;
  let ideal2 = 0;
  let maxRel = 0;
  let sumRel = 0;
  for (const m of items) {
    dev2 += m.deviationNorm * m.deviationNorm;
    ideal2 += m.idealUpdateNorm * m.idealUpdateNorm;
    maxRel = Math.max(maxRel, m.relativeDeviation);
    sumRel += m.relativeDeviation;
  }
  const dev = Math.sqrt(dev2);
  const ideal = Math.sqrt(ideal2);
  return {
    modules: items.length,
    deviationNorm: dev,
    idealUpdateNorm: ideal,
    relativeDeviation: relativeDeviation(dev, ideal),
    maxRelativeDeviation: maxRel,
    meanRelativeDeviation: items.length === 0 ? 0 : sumRel / items.length,
  };
}

/** Groups per-module deviations by module type and by layer (layers ascending, null last). */
export function summarizeDeviations(items: readonly ModuleDeviation[]): DeviationSummary {
  const types = new Map<ModuleType, ModuleDeviation[]>();
  const layers = new Map<number | null, ModuleDeviation[]>();
  const add = <K>(map: Map<K, ModuleDeviation[]>, key: K, m: ModuleDeviation): void => {
    const list = map.get(key);
    if (list === undefined) map.set(key, [m]);
    else list.push(m);
  };
  for (const m of items) {
    add(types, m.moduleType, m);
    add(layers, m.layer, m);
  }
  const layerKeys = [...layers.keys()].sort((a, b) => (a === null ? 1 : b === null ? -1 : a - b));
  return {
    total: group(items),
    byType: [...types.entries()].map(([moduleType, list]) => ({ moduleType, ...group(list) })),
    byLayer: layerKeys.map((layer) => ({ layer, ...group(layers.get(layer)!) })),
  };
}
