/**
 * Runs optimizer steps over a set of trainable float32 tensors: holds their current values and the
 * optimizer state, feeds them as inputs and swaps in the `.next` outputs after each step (the
 * output arrays become the next inputs; nothing is copied back). One micro-batch per step runs the
 * fused `step` session; with gradient accumulation the `grads` session runs per micro-batch, the
 * gradients are summed here weighted by each micro-batch's share of the step's loss tokens (so k
 * micro-batches give the gradient of one batch of all their tokens), and `apply` updates.
 */
import type { OptimizerConfig } from '../graph/trainStep.js';
import { ortTensor, runSession } from '../runtime/session.js';
import type { OrtSession, OrtTensor } from '../runtime/session.js';
import { gradName } from './compile.js';

export type Feeds = Record<string, OrtTensor>;

/** A trainable tensor. */
export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/** One micro-batch of a step: its feeds and its loss tokens. */
export interface MicroBatch {
  readonly feeds: Feeds;
  readonly lossTokens: number;
}

/** The sessions a runner drives: `step` (fused) or `grads` + `apply` (accumulation). */
export interface StepSessions {
  readonly step?: OrtSession;
  readonly grads?: OrtSession;
  readonly apply?: OrtSession;
}

/** Feeds exactly the session's inputs, taken from the pools (later pools win); names what is missing. */
export function selectFeeds(session: OrtSession, what: string, ...pools: ReadonlyArray<Readonly<Record<string, OrtTensor>>>): Feeds {
  const feeds: Feeds = {};
  const missing: string[] = [];
  for (const name of session.inputNames) {
    let found: OrtTensor | undefined;
    for (let i = pools.length - 1; i >= 0 && found === undefined; i--) found = pools[i][name];
    if (found === undefined) missing.push(name);
    else feeds[name] = found;
  }
  if (missing.length > 0) throw new Error(`trainer: no value for input(s) ${missing.join(', ')} of the ${what} session`);
  return feeds;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Optimizer-state slot names of one parameter. */
function slotNames(optimizer: OptimizerConfig, param: string): string[] {
  if (optimizer.kind === 'adamw') return [`${param}.m`, `${param}.v`];
  return (optimizer.momentum ?? 0) !== 0 ? [`${param}.velocity`] : [];
}

/** Trainable values, optimizer state and the step loop over the sessions. */
export class StepRunner {
  private readonly values = new Map<string, Float32Array>();
  private readonly state = new Map<string, Float32Array>();
  private updates = 0;

  constructor(
    readonly params: readonly ParamSpec[],
    private readonly optimizer: OptimizerConfig,
    private readonly sessions: StepSessions,
  ) {
    if (sessions.step === undefined && (sessions.grads === undefined || sessions.apply === undefined)) {
      throw new Error('StepRunner: needs a step session, or grads and apply sessions');
    }
    this.resetOptimizer();
  }

  /** Optimizer updates since the last reset. */
  get optimizerSteps(): number {
    return this.updates;
  }

  /** Sets the values of every trainable tensor (arrays are used as they are, never written to). */
  setValues(values: ReadonlyMap<string, Float32Array>): void {
    for (const p of this.params) {
      const v = values.get(p.name);
      if (v === undefined) throw new Error(`StepRunner: no value for trainable tensor ${p.name}`);
      if (v.length !== numel(p.shape)) throw new Error(`StepRunner: ${p.name} has ${v.length} values, shape [${p.shape.join(', ')}] needs ${numel(p.shape)}`);
      this.values.set(p.name, v);
    }
  }

  /** The current value of a trainable tensor (owned by the runner; copy it to keep it past the next step). */
  value(name: string): Float32Array {
    const v = this.values.get(name);
    if (v === undefined) throw new Error(`StepRunner: ${name} is not a trainable tensor`);
    return v;
  }

  /** Zeroes the optimizer state and the update count. */
  resetOptimizer(): void {
    this.updates = 0;
    for (const p of this.params) {
      for (const slot of slotNames(this.optimizer, p.name)) this.state.set(slot, new Float32Array(numel(p.shape)));
    }
  }

  private stateFeeds(lr: number): Feeds {
    const feeds: Feeds = { lr: ortTensor('float32', Float32Array.of(lr), []) };
    if (this.optimizer.kind === 'adamw') feeds.step = ortTensor('float32', Float32Array.of(this.updates + 1), []);
    for (const p of this.params) {
      feeds[p.name] = ortTensor('float32', this.values.get(p.name)!, p.shape);
      for (const slot of slotNames(this.optimizer, p.name)) feeds[slot] = ortTensor('float32', this.state.get(slot)!, p.shape);
    }
    return feeds;
  }

  private swap(out: Record<string, OrtTensor>): void {
    for (const p of this.params) {
      this.values.set(p.name, out[`${p.name}.next`].data as Float32Array);
      for (const slot of slotNames(this.optimizer, p.name)) this.state.set(slot, out[`${slot}.next`].data as Float32Array);
    }
    this.updates++;
  }

  /**
   * One optimizer step over `micro` with learning rate `lr`; `constants` are the other feeds
   * (frozen weights, fixed inputs). Returns each micro-batch's mean loss.
   */
  async step(micro: readonly MicroBatch[], lr: number, constants: Readonly<Record<string, OrtTensor>>): Promise<number[]> {
    if (micro.length === 0) throw new Error('StepRunner.step: no micro-batches');
    const { step, grads, apply } = this.sessions;
    if (micro.length === 1 && step !== undefined) {
      const out = await runSession(step, selectFeeds(step, 'train step', constants, this.stateFeeds(lr), micro[0].feeds));
      this.swap(out);
      return [(out.loss.data as Float32Array)[0]];
    }
    if (grads === undefined || apply === undefined) throw new Error(`StepRunner.step: ${micro.length} micro-batches need the grads and apply sessions (gradient accumulation was not compiled)`);
    const total = micro.reduce((s, m) => s + m.lossTokens, 0);
    const sums = new Map<string, Float32Array>(this.params.map((p) => [p.name, new Float32Array(numel(p.shape))]));
    const paramFeeds = this.stateFeeds(lr);
    const losses: number[] = [];
    for (const m of micro) {
      const weight = total > 0 ? m.lossTokens / total : 1 / micro.length;
      const out = await runSession(grads, selectFeeds(grads, 'gradient', constants, paramFeeds, m.feeds));
      losses.push((out.loss.data as Float32Array)[0]);
      if (weight === 0) continue;
      for (const p of this.params) {
        const g = out[gradName(p.name)].data as Float32Array;
        const acc = sums.get(p.name)!;
        for (let i = 0; i < acc.length; i++) acc[i] += weight * g[i];
      }
    }
    const gradFeeds: Feeds = {};
    for (const p of this.params) gradFeeds[gradName(p.name)] = ortTensor('float32', sums.get(p.name)!, p.shape);
    const out = await runSession(apply, selectFeeds(apply, 'optimizer update', paramFeeds, gradFeeds));
    this.swap(out);
    return losses;
  }
}
