/**
 * Names and shapes of the tensors that frames carry. A tensor name is a PEFT module path (as in
 * `model.named_modules()`, without PEFT's `base_model.model.` prefix) followed by a role:
 *
 *   `<module>.lora_A`      A, rank × in            (PEFT key `base_model.model.<module>.lora_A.weight`)
 *   `<module>.lora_B`      B, out × rank           (PEFT key `base_model.model.<module>.lora_B.weight`)
 *   `<module>.residual_P`  P, out × innerDim       factored residual ΔR = P·Q
 *   `<module>.residual_Q`  Q, innerDim × in
 *   `<module>.residual`    dense residual, out × in
 *   `<module>.lora_R`      Fed-SB's trained R, rank × rank (between the frozen B and A; docs/protocol.md §5.7)
 *
 * Shapes are always in the `nn.Linear` orientation (out × in), whatever the base layout; a peer
 * whose base stores the weight as in × out (GPT-2 `Conv1D`, `fanInFanOut`) transposes when it applies.
 */
import { protocolError } from './errors.js';

/** One LoRA-adapted module: its path, its linear's in/out features, and the adapter rank. */
export interface ModuleLayout {
  readonly module: string;
  readonly in: number;
  readonly out: number;
  readonly rank: number;
  /** True when the base stores W0 as in × out (GPT-2 Conv1D). Wire shapes do not change. */
  readonly fanInFanOut?: boolean;
}

/** The adapted modules of a federation, in a fixed order (the order tensors are sent in). */
export type AdapterLayout = readonly ModuleLayout[];

/**
 * The layout a client of rank `rank` uploads in (docs/protocol.md §5.6): every module's rank capped
 * at `rank`; the layout itself when no module is above it.
 */
export function layoutAtRank(layout: AdapterLayout, rank: number | undefined): AdapterLayout {
  if (rank === undefined || layout.every((m) => m.rank <= rank)) return layout;
  return layout.map((m) => (m.rank <= rank ? m : { ...m, rank }));
}

/** How a module's residual travels: as (P, Q) or as one dense out × in matrix. */
export type ResidualForm = 'factored' | 'dense';

/** One module's residual entry in `round_start` / `federation_done` params (`baseUpdate.modules[]`). */
export interface ResidualEntry {
  readonly module: string;
  readonly form: ResidualForm;
  /** Factored: inner dimension of P·Q (≥ 1, at most k·r for k clients of rank r). Dense: 0. */
  readonly innerDim: number;
  /** The scale s the receiver applies: W0 ← W0 + s·P·Q (or + s·D). */
  readonly scale: number;
}

export const ROLE_LORA_A = 'lora_A';
export const ROLE_LORA_B = 'lora_B';
export const ROLE_RESIDUAL_P = 'residual_P';
export const ROLE_RESIDUAL_Q = 'residual_Q';
export const ROLE_RESIDUAL_DENSE = 'residual';
export const ROLE_LORA_R = 'lora_R';

/** Tensor roles, the last dot-separated segment of a tensor name. */
export type TensorRole = typeof ROLE_LORA_A | typeof ROLE_LORA_B | typeof ROLE_RESIDUAL_P | typeof ROLE_RESIDUAL_Q | typeof ROLE_RESIDUAL_DENSE | typeof ROLE_LORA_R;
export const TENSOR_ROLES: readonly TensorRole[] = [ROLE_LORA_A, ROLE_LORA_B, ROLE_RESIDUAL_P, ROLE_RESIDUAL_Q, ROLE_RESIDUAL_DENSE, ROLE_LORA_R];

/**
 * Which tensors carry a module's adapter: `lora` (A and B), or `sb` (Fed-SB, `config.method` fedsb:
 * A and B frozen, R trained; a `client_update` carries `lora_R` only, a `global` message `lora_R` and,
 * the first time a session receives one, `lora_A` and `lora_B`; docs/protocol.md §5.7).
 */
export type AdapterForm = 'lora' | 'sb';

/** The adapter form of a federation's method: `sb` for fedsb, `lora` for every other. */
export function adapterFormOf(method: string): AdapterForm {
  return method === 'fedsb' ? 'sb' : 'lora';
}

/** The wire name of a module's tensor: `transformer.h.0.attn.c_attn.lora_A`. */
export function tensorName(module: string, role: TensorRole): string {
  return `${module}.${role}`;
}

/** Splits a wire tensor name into module and role, or `undefined` when it is not one. */
export function parseTensorName(name: string): { module: string; role: TensorRole } | undefined {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const role = name.slice(dot + 1);
  return (TENSOR_ROLES as readonly string[]).includes(role) ? { module: name.slice(0, dot), role: role as TensorRole } : undefined;
}

/** Expected name → shape of a full adapter (`lora_A` and `lora_B` of every module, in layout order). */
export function adapterTensorShapes(layout: AdapterLayout): Map<string, readonly number[]> {
  const shapes = new Map<string, readonly number[]>();
  for (const m of layout) {
    shapes.set(tensorName(m.module, ROLE_LORA_A), [m.rank, m.in]);
    shapes.set(tensorName(m.module, ROLE_LORA_B), [m.out, m.rank]);
  }
  return shapes;
}

/** Expected name → shape of Fed-SB's `lora_R` (rank × rank) of every module, in layout order. */
export function sbRTensorShapes(layout: AdapterLayout): Map<string, readonly number[]> {
  return new Map(layout.map((m) => [tensorName(m.module, ROLE_LORA_R), [m.rank, m.rank]]));
}

/**
 * Expected name → shape of the residual tensors that `entries` announce; out/in come from the
 * layout. Throws `E_TENSOR_NAME` for a module that is not in the layout.
 */
export function residualTensorShapes(entries: readonly ResidualEntry[], layout: AdapterLayout): Map<string, readonly number[]> {
  const byModule = new Map(layout.map((m) => [m.module, m]));
  const shapes = new Map<string, readonly number[]>();
  for (const e of entries) {
    const m = byModule.get(e.module);
    if (m === undefined) throw protocolError('E_TENSOR_NAME', `baseUpdate names module ${e.module}, which is not in the adapter layout`);
    if (e.form === 'factored') {
      shapes.set(tensorName(e.module, ROLE_RESIDUAL_P), [m.out, e.innerDim]);
      shapes.set(tensorName(e.module, ROLE_RESIDUAL_Q), [e.innerDim, m.in]);
    } else {
      shapes.set(tensorName(e.module, ROLE_RESIDUAL_DENSE), [m.out, m.in]);
    }
  }
  return shapes;
}
