/**
 * The contract between autodiff and the ops: each differentiable op exports a `GradRule` beside
 * its builder function, and src/graph/ops/registry.ts lists them all.
 */
import type { Node, Value } from './builder.js';
import type { OpName } from './opTable.js';

/** What a gradient rule sees of one forward node. */
export interface GradContext {
  readonly node: Node;
  /** The forward node's inputs (undefined where an optional input was omitted). */
  readonly inputs: readonly (Value | undefined)[];
  /** The forward node's outputs. */
  readonly outputs: readonly Value[];
  /** Gradient of the loss with respect to each output; undefined where an output does not reach the loss. */
  readonly dys: readonly (Value | undefined)[];
  /** `needs[i]` is true when input i lies on a path from a parameter (only those gradients are built). */
  readonly needs: readonly boolean[];
}

/** Builds the gradients of a node's inputs from the gradients of its outputs (undefined = none). */
export type GradFn = (ctx: GradContext) => readonly (Value | undefined)[];

/** A gradient rule for one ONNX op type. */
export interface GradRule {
  readonly op: OpName;
  readonly grad: GradFn;
}

/** The gradient of the single output, which autodiff guarantees exists for single-output nodes. */
export function dyOf(ctx: GradContext): Value {
  const dy = ctx.dys[0];
  if (dy === undefined) throw new Error(`${ctx.node.op}: gradient rule called without an output gradient`);
  return dy;
}

/** Input `i`, which the rule knows is present. */
export function inputOf(ctx: GradContext, i: number): Value {
  const v = ctx.inputs[i];
  if (v === undefined) throw new Error(`${ctx.node.op}: input ${i} is missing`);
  return v;
}
