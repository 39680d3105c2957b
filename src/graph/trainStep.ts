/**
 * One training step as one graph: loss, gradients of the trainable parameters, optional global
 * norm clipping, and the optimizer update. Naming convention of the extra inputs and outputs:
 *
 * | inputs | outputs |
 * |---|---|
 * | `lr` (scalar), `step` (scalar, AdamW; 1-based) | `loss`, `grad_norm` (when clipping) |
 * | `<param>.m`, `<param>.v` (AdamW state) | `<param>.next`, `<param>.m.next`, `<param>.v.next` |
 * | `<param>.velocity` (SGD with momentum) | `<param>.next`, `<param>.velocity.next` |
 *
 * lr and step have the parameters' dtype. Only parameters, their state and scalars leave the
 * session; activations stay inside.
 */
import type { Value } from './builder.js';
import { grad } from './autodiff.js';
import { check } from './errors.js';
import { adamW, clipByGlobalNorm, sgd } from './optim.js';

export type OptimizerConfig =
  | { kind: 'adamw'; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }
  | { kind: 'sgd'; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number };

export interface TrainStepOptions {
  loss: Value;
  /** Trainable parameters (graph inputs, e.g. the LoRA A and B of every adapted module). */
  params: readonly Value[];
  optimizer: OptimizerConfig;
  /** Clip the global gradient norm to this value before the update. */
  maxGradNorm?: number;
  /** Activation recomputation: the backward recomputes each segment (block) instead of keeping its activations (autodiff.ts). */
  recomputeSegments?: boolean;
}

export interface TrainStep {
  /** Outputs to pass to `toOnnx`: loss, grad_norm, and the next params and state. */
  readonly outputs: Record<string, Value>;
  /** The optimizer inputs this step added (lr, step, state), by name. */
  readonly stateInputs: Record<string, Value>;
}

/** Appends gradients, clipping and the optimizer update for `params` to the loss's graph. */
export function buildTrainStep(options: TrainStepOptions): TrainStep {
  const { loss, params, optimizer } = options;
  const g = loss.graph;
  check(params.length > 0, () => 'buildTrainStep: no parameters');
  const dtype = params[0].dtype;
  check(params.every((p) => p.dtype === dtype), () => 'buildTrainStep: parameters must share one dtype');
  let grads = grad(loss, params, { recomputeSegments: options.recomputeSegments === true });
  const outputs: Record<string, Value> = { loss };
  const stateInputs: Record<string, Value> = {};
  if (options.maxGradNorm !== undefined) {
    const clipped = clipByGlobalNorm(grads, options.maxGradNorm);
    grads = clipped.grads;
    outputs.grad_norm = clipped.norm;
  }
  const lr = stateInputs.lr = g.input('lr', dtype, []);
  if (optimizer.kind === 'adamw') {
    const step = stateInputs.step = g.input('step', dtype, []);
    const slots = params.map((p, i) => ({
      param: p,
      grad: grads[i],
      m: stateInputs[`${p.name}.m`] = g.input(`${p.name}.m`, dtype, p.shape),
      v: stateInputs[`${p.name}.v`] = g.input(`${p.name}.v`, dtype, p.shape),
    }));
    adamW(slots, { ...optimizer, lr, step }).forEach((r, i) => {
      const name = params[i].name;
      outputs[`${name}.next`] = r.param;
      outputs[`${name}.m.next`] = r.m;
      outputs[`${name}.v.next`] = r.v;
    });
  } else {
    const withMomentum = (optimizer.momentum ?? 0) !== 0;
    const slots = params.map((p, i) => ({
      param: p,
      grad: grads[i],
      ...(withMomentum ? { velocity: stateInputs[`${p.name}.velocity`] = g.input(`${p.name}.velocity`, dtype, p.shape) } : {}),
    }));
    sgd(slots, { ...optimizer, lr }).forEach((r, i) => {
      const name = params[i].name;
      outputs[`${name}.next`] = r.param;
      if (r.velocity !== undefined) outputs[`${name}.velocity.next`] = r.velocity;
    });
  }
  return { outputs, stateInputs };
}
