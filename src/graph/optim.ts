/**
 * Optimizer steps as graph nodes, so one session.run does forward, backward and update:
 * parameters and optimizer state come in as inputs and their new values go out as outputs.
 * The formulas follow torch.optim (AdamW, SGD) and torch.nn.utils.clip_grad_norm_.
 */
import type { Value } from './builder.js';
import { check } from './errors.js';
import { add } from './ops/add.js';
import { div } from './ops/div.js';
import { minimum } from './ops/minimum.js';
import { mul } from './ops/mul.js';
import { pow } from './ops/pow.js';
import { reduceSum } from './ops/reduceSum.js';
import { sqrt } from './ops/sqrt.js';
import { sub } from './ops/sub.js';
import { shapeEquals } from './shape.js';

/** A learning rate or other hyperparameter: a number baked into the graph, or a scalar input (schedules). */
export type Scalar = Value | number;

export interface AdamWOptions {
  lr: Scalar;
  /** The 1-based step count t for bias correction, a float scalar input of the params' dtype. */
  step: Value;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface ParamSlot {
  readonly param: Value;
  readonly grad: Value;
}

export interface AdamWSlot extends ParamSlot {
  readonly m: Value;
  readonly v: Value;
}

function checkSlot(op: string, s: ParamSlot, state: readonly Value[]): void {
  for (const v of [s.grad, ...state]) {
    check(v.dtype === s.param.dtype && shapeEquals(v.shape, s.param.shape), () => `${op}: ${v.toString()} does not match parameter ${s.param.toString()}`);
  }
}

/**
 * One AdamW step (decoupled weight decay, bias correction), exactly torch.optim.AdamW:
 * p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
 * p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
 */
export function adamW(slots: readonly AdamWSlot[], options: AdamWOptions): { param: Value; m: Value; v: Value }[] {
  const { lr, step, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = options;
  check(slots.length > 0, () => 'adamW: no parameters');
  check(step.rank === 0 && step.dtype === slots[0].param.dtype, () => `adamW: step must be a ${slots[0].param.dtype} scalar, got ${step.toString()}`);
  const g = step.graph;
  const dtype = step.dtype;
  const stepSize = div(lr, sub(1, pow(g.scalar(beta1, dtype), step)));
  const bc2Sqrt = sqrt(sub(1, pow(g.scalar(beta2, dtype), step)));
  const decay = typeof lr === 'number' ? 1 - lr * weightDecay : sub(1, mul(lr, weightDecay));
  return slots.map((s) => {
    checkSlot('adamW', s, [s.m, s.v]);
    const m = add(mul(s.m, beta1), mul(s.grad, 1 - beta1));
    const v = add(mul(s.v, beta2), mul(mul(s.grad, s.grad), 1 - beta2));
    const decayed = weightDecay === 0 ? s.param : mul(s.param, decay);
    const denom = add(div(sqrt(v), bc2Sqrt), eps);
    return { param: sub(decayed, mul(stepSize, div(m, denom))), m, v };
  });
}

export interface SgdOptions {
  lr: Scalar;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export interface SgdSlot extends ParamSlot {
  /** The momentum buffer (zeros before the first step); required when momentum > 0. */
  readonly velocity?: Value;
}

/**
 * One SGD step, torch.optim.SGD: d = g + wd·p; with momentum, buf ← μ·buf + (1−τ)·d and
 * d = buf (or d + μ·buf with Nesterov); p ← p − lr·d. (A zero buffer on step 1 equals torch's
 * first-step initialisation when dampening is 0.)
 */
export function sgd(slots: readonly SgdSlot[], options: SgdOptions): { param: Value; velocity?: Value }[] {
  const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = options;
  return slots.map((s) => {
    checkSlot('sgd', s, s.velocity === undefined ? [] : [s.velocity]);
    let d = weightDecay === 0 ? s.grad : add(s.grad, mul(s.param, weightDecay));
    let velocity: Value | undefined;
    if (momentum !== 0) {
      check(s.velocity !== undefined, () => `sgd: momentum ${momentum} needs a velocity input for ${s.param.name}`);
      velocity = add(mul(s.velocity, momentum), dampening === 0 ? d : mul(d, 1 - dampening));
      d = nesterov ? add(d, mul(velocity, momentum)) : velocity;
    }
    const param = sub(s.param, mul(d, lr));
    return velocity === undefined ? { param } : { param, velocity };
  });
}

/**
 * Scales all gradients by min(1, maxNorm / (‖g‖ + 1e-6)) where ‖g‖ is the global L2 norm over
 * all of them (torch.nn.utils.clip_grad_norm_). Returns the clipped gradients and the norm before clipping.
 */
export function clipByGlobalNorm(grads: readonly Value[], maxNorm: Scalar): { grads: Value[]; norm: Value } {
  check(grads.length > 0, () => 'clipByGlobalNorm: no gradients');
  const squares = grads.map((gr) => reduceSum(mul(gr, gr)));
  const norm = sqrt(squares.reduce((acc, s) => add(acc, s)));
  const coef = minimum(div(maxNorm, add(norm, 1e-6)), 1);
  return { grads: grads.map((gr) => mul(gr, coef)), norm };
}
