/**
 * Typed messages as the program sees them: method, params (typed by the catalogue) and float32
 * tensors, whatever dtype they travelled in. `AnyMessage` is a union discriminated by `method`,
 * so `switch (msg.method)` narrows `msg.params`.
 */
import type { Method, ParamsOf } from './messages.js';

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

/** Any catalogue message; narrow it with `msg.method`. */
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

/** A message's tensors by name. */
export function tensorMap(tensors: readonly NamedTensor[]): Map<string, NamedTensor> {
  return new Map(tensors.map((t) => [t.name, t]));
}
