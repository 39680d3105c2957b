/**
 * Typed messages as the program sees them: method, params (typed by the catalogue) and float32
 * tensors, whatever dtype they travelled in. `AnyMessage` is a union discriminated by `method`,
 * so `switch (msg.method)` narrows `msg.params`.
 */
import { descriptorFor, type DescriptorOf, type Method, type ParamsOf } from './messages.js';

/** A named float32 tensor, row-major, in the wire orientation (see adapterTensors.ts). */
export interface NamedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** One message of a given method. */
export interface Message<M extends Method = Method> {
  readonly method: M;
  readonly params: ParamsOf<M>;
  /** Float tensors in table order (empty for messages without tensors). */
  readonly tensors: readonly NamedTensor[];
  /** The `chunk` bytes of a model_chunk; absent otherwise. */
  readonly blob?: Uint8Array;
}

/** Any catalogue message; narrow it with `msg.method` or `isMessage`. */
export type AnyMessage = { [M in Method]: Message<M> }[Method];

/** What a sender hands to `encodeMessage`: tensors and blob may be left out when there are none. */
export interface OutgoingMessage<M extends Method = Method> {
  readonly method: M;
  readonly params: ParamsOf<M>;
  readonly tensors?: readonly NamedTensor[];
  readonly blob?: Uint8Array;
}

/** Any outgoing catalogue message (a union discriminated by `method`). */
export type AnyOutgoingMessage = { [M in Method]: OutgoingMessage<M> }[Method];

/**
 * Structural type guard: `value` is a `method` message whose params satisfy the catalogue schema
 * (and cross-field rules), with well-formed tensors. Tensor names and shapes against an adapter
 * layout are checked on decoding, not here.
 */
export function isMessage<M extends Method>(value: unknown, method: M): value is Message<M> {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { method?: unknown; params?: unknown; tensors?: unknown; blob?: unknown };
  if (v.method !== method) return false;
  const d = descriptorFor(method) as DescriptorOf<M> | undefined;
  if (d === undefined || !d.is(v.params)) return false;
  if (!Array.isArray(v.tensors)) return false;
  const tensorsOk = v.tensors.every((t: unknown) => {
    if (typeof t !== 'object' || t === null) return false;
    const { name, shape, data } = t as { name?: unknown; shape?: unknown; data?: unknown };
    return typeof name === 'string' && Array.isArray(shape) && data instanceof Float32Array
      && shape.every((n) => Number.isInteger(n) && n >= 0) && shape.reduce((a: number, b: number) => a * b, 1) === data.length;
  });
  return tensorsOk && (v.blob === undefined || v.blob instanceof Uint8Array);
}

/** A message's tensors by name. */
export function tensorMap(tensors: readonly NamedTensor[]): Map<string, NamedTensor> {
  return new Map(tensors.map((t) => [t.name, t]));
}
