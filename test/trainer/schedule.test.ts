// Learning-rate schedules against values worked out by hand from transformers' definitions
// (get_constant/linear/cosine_schedule_with_warmup). The trainer checks a schedule's fields
// (test/trainer/setup.test.ts: lr, warmupSteps, schedule; workerTrainer.test.ts: steps).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { learningRate, scheduleFactor } from '../../src/trainer/schedule.js';
import type { ScheduleOptions } from '../../src/trainer/schedule.js';

function factors(options: ScheduleOptions, steps: readonly number[]): number[] {
  return steps.map((s) => scheduleFactor(options, s));
}

function assertClose(actual: readonly number[], expected: readonly number[]): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) < 1e-12, `step ${i}: ${a} ≠ ${expected[i]}`));
}

describe('learning-rate schedules', () => {
  test('constant with 4 warm-up steps: 0, 1/4, 1/2, 3/4, then 1 at every later step', () => {
    const options: ScheduleOptions = { kind: 'constant', lr: 0.1, totalSteps: 10, warmupSteps: 4 };

    const got = factors(options, [0, 1, 2, 3, 4, 9, 50]);

    assertClose(got, [0, 0.25, 0.5, 0.75, 1, 1, 1]);
  });

  test('linear over 10 steps with 2 warm-up: peak at step 2, (10 − s)/8 after, 0 at and past the end', () => {
    const options: ScheduleOptions = { kind: 'linear', lr: 1, totalSteps: 10, warmupSteps: 2 };

    const got = factors(options, [0, 1, 2, 3, 6, 9, 10, 12]);

    assertClose(got, [0, 0.5, 1, 7 / 8, 4 / 8, 1 / 8, 0, 0]);
  });

  test('cosine over 10 steps without warm-up: 1 at 0, 1/2 at the middle, 0.5·(1 + cos(π·s/10)) between, 0 at the end', () => {
    const options: ScheduleOptions = { kind: 'cosine', lr: 1, totalSteps: 10 };

    const got = factors(options, [0, 2, 5, 8, 10]);

    assertClose(got, [1, 0.5 * (1 + Math.cos(Math.PI * 0.2)), 0.5, 0.5 * (1 + Math.cos(Math.PI * 0.8)), 0]);
  });

  test('cosine with 3 warm-up over 13 steps: warm-up ramp, then the cosine over the remaining 10', () => {
    const options: ScheduleOptions = { kind: 'cosine', lr: 1, totalSteps: 13, warmupSteps: 3 };

    const got = factors(options, [1, 3, 8, 13]);

    assertClose(got, [1 / 3, 1, 0.5, 0]);
  });

  test('learningRate is the peak lr times the factor', () => {
    const options: ScheduleOptions = { kind: 'linear', lr: 3e-3, totalSteps: 4, warmupSteps: 0 };

    const lrs = [0, 1, 2, 3].map((s) => learningRate(options, s));

    assertClose(lrs, [3e-3, 2.25e-3, 1.5e-3, 0.75e-3]);
  });
});
