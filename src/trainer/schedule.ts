/**
 * Learning-rate schedules, as Hugging Face `transformers` defines them (`get_constant_schedule_with_warmup`,
 * `get_linear_schedule_with_warmup`, `get_cosine_schedule_with_warmup`): the factor applied at
 * optimizer step `s` (0-based, the count of steps already taken) is
 *
 * - warm-up (`s < warmup`): `s / warmup` — so with warm-up the very first step has lr 0, exactly as
 *   in `transformers` (its scheduler is stepped after the optimizer);
 * - then `constant`: 1; `linear`: `(total − s) / (total − warmup)`; `cosine`:
 *   `0.5·(1 + cos(π·(s − warmup) / (total − warmup)))`, never below 0.
 */

/** The schedule kinds. */
export type ScheduleKind = 'constant' | 'linear' | 'cosine';
export const SCHEDULES: readonly ScheduleKind[] = ['constant', 'linear', 'cosine'];

/** A learning-rate schedule over one training run. */
export interface ScheduleOptions {
  readonly kind: ScheduleKind;
  /** Peak learning rate. */
  readonly lr: number;
  /** Optimizer steps of the run (the decay reaches 0 at this step). */
  readonly totalSteps: number;
  /** Linear warm-up steps; default 0. */
  readonly warmupSteps?: number;
}

/** The multiplier of the peak lr at 0-based optimizer step `step` (see the module comment). */
export function scheduleFactor(options: ScheduleOptions, step: number): number {
  const warmup = options.warmupSteps ?? 0;
  if (step < warmup) return step / Math.max(1, warmup);
  if (options.kind === 'constant') return 1;
  const decaySteps = Math.max(1, options.totalSteps - warmup);
  const progress = (step - warmup) / decaySteps;
  if (options.kind === 'linear') return Math.max(0, 1 - progress);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** The learning rate at 0-based optimizer step `step`. */
export function learningRate(options: ScheduleOptions, step: number): number {
  return options.lr * scheduleFactor(options, step);
}
