/**
 * One LoRA-adapted module: its spec (shapes, rank, scaling, weight layout) and the checks applied to
 * every client's factors before they enter an aggregation. Conventions (docs/math.md §1–2): A is r × in,
 * B is out × r, the scaling is s = alpha / r (rsLoRA: alpha / √r), and the effective weight is
 * W0 + s·B·A in the `linear` layout (W0 stored out × in) or W0 + (s·B·A)ᵀ in the `conv1d` layout
 * (GPT-2's Conv1D, PEFT's fan_in_fan_out: W0 stored in × out).
 */
import { firstNonFinite, shapeString } from './tensor.js';
import type { Matrix } from './tensor.js';

/** How the base weight is stored: `linear` = out × in (nn.Linear), `conv1d` = in × out (GPT-2 Conv1D). */
export type Layout = 'linear' | 'conv1d';
export const LAYOUTS: readonly Layout[] = ['linear', 'conv1d'];

/** The static description of one LoRA-adapted module. */
export interface LoraModuleSpec {
  /** Module path as PEFT names it, e.g. `transformer.h.3.attn.c_attn` or `model.layers.12.self_attn.q_proj`. */
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** LoRA rank r (rows of A, columns of B). */
  readonly rank: number;
  readonly alpha: number;
  readonly useRslora: boolean;
  readonly layout: Layout;
}

/** One module's adapter factors: A (r × in) and B (out × r), float32 as trained and sent. */
export interface LoraFactors {
  readonly a: Matrix<Float32Array>;
  readonly b: Matrix<Float32Array>;
  /**
   * Fed-SB (LoRA-SB, core/loraSb.ts): the trained r × r matrix between the frozen B and A, so the
   * module's product is B·R·A. Absent for plain LoRA; only the fedsb strategy accepts it.
   */
  readonly r?: Matrix<Float32Array>;
}

/** An adapter: LoRA factors by module path (`A` rank × in, `B` out × rank, float32, wire orientation). */
export type Adapter = ReadonlyMap<string, LoraFactors>;

/** The LoRA scaling s = alpha / r, or alpha / √r with rsLoRA. */
export function loraScaling(alpha: number, rank: number, useRslora: boolean): number {
  if (!Number.isFinite(alpha)) throw new RangeError(`loraScaling: alpha must be finite, got ${alpha}`);
  if (!Number.isInteger(rank) || rank <= 0) throw new RangeError(`loraScaling: rank must be a positive integer, got ${rank}`);
  return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** The scaling of a module spec. */
export function specScaling(spec: LoraModuleSpec): number {
  return loraScaling(spec.alpha, spec.rank, spec.useRslora);
}

/**
 * Stored shape of the base weight W0 of a module with `inFeatures` inputs and `outFeatures` outputs:
 * [out, in] for `linear`, [in, out] for `conv1d`.
 */
export function baseWeightShape(layout: Layout, inFeatures: number, outFeatures: number): [number, number] {
  return layout === 'linear' ? [outFeatures, inFeatures] : [inFeatures, outFeatures];
}

/** Throws unless the spec is well-formed (positive integer sizes, finite alpha, known layout). */
export function validateSpec(spec: LoraModuleSpec): void {
  const where = `module '${spec.name}'`;
  for (const key of ['inFeatures', 'outFeatures', 'rank'] as const) {
    const v = spec[key];
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${where}: ${key} must be a positive integer, got ${v}`);
  }
  if (!Number.isFinite(spec.alpha)) throw new RangeError(`${where}: alpha must be finite, got ${spec.alpha}`);
  if (!LAYOUTS.includes(spec.layout)) throw new RangeError(`${where}: layout must be one of ${LAYOUTS.join(', ')}, got '${String(spec.layout)}'`);
}

/** Names a client in messages: `client 2` or `client 2 ('alice')`. */
export function clientLabel(index: number, id?: string): string {
  return id === undefined ? `client ${index}` : `client ${index} ('${id}')`;
}

function checkMatrix(m: Matrix, rows: number, cols: number, what: string): void {
  const [r, c] = m.shape;
  if (m.shape.length !== 2 || r !== rows || c !== cols) {
    throw new RangeError(`${what} has shape ${shapeString(m.shape)}, expected [${rows}, ${cols}]`);
  }
  if (!(m.data instanceof Float32Array)) throw new TypeError(`${what} must be float32 (Float32Array)`);
  if (m.data.length !== rows * cols) throw new RangeError(`${what} holds ${m.data.length} values, expected ${rows * cols}`);
  const bad = firstNonFinite(m.data);
  if (bad >= 0) {
    throw new RangeError(`${what} has a non-finite value ${m.data[bad]} at [${Math.floor(bad / cols)}, ${bad % cols}]`);
  }
}

/**
 * Checks one client's factors against the spec: A is rank × in, B is out × rank, both float32 and
 * finite. Errors name the client, the module and the tensor (`client 2: module 'h.0.attn.c_attn':
 * lora_B has shape [768, 4], expected [2304, 4]`).
 */
export function validateFactors(spec: LoraModuleSpec, factors: LoraFactors, client: number, clientId?: string): void {
  const where = `${clientLabel(client, clientId)}: module '${spec.name}'`;
  checkMatrix(factors.a, spec.rank, spec.inFeatures, `${where}: lora_A`);
  checkMatrix(factors.b, spec.outFeatures, spec.rank, `${where}: lora_B`);
}
