// The multi-run summary: mean ± sample sd against hand-computed float64 values, the FedEx − FedIT
// gap paired by seed (not the difference of the means' spreads), missing figures left out and
// counted, and the plan of runs (labels, order, sweep overrides).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MethodSummary } from '../../../src/federation/events/events.js';
import { planRuns } from '../../../src/federation/simulation/comparison.js';
import { formatStat, meanSd, summarizeRuns, type RunEntry } from '../../../src/federation/simulation/comparisonReport.js';

function summary(method: MethodSummary['method'], evalLoss: number, exactMatch: number | null, dev: number | null): MethodSummary {
  return { method, evalLoss, evalAccuracy: null, exactMatch, meanRelativeDeviation: dev, bytesSent: 1000, bytesReceived: 500, seconds: 1 };
}

function run(seed: number, sweepValue: number | null, fedex: number, fedit: number, em: [number, number] | null = null): RunEntry {
  return {
    label: `seed-${seed}`,
    seed,
    clients: 3,
    localSteps: sweepValue ?? 10,
    sweepValue,
    initialEvalLoss: 5,
    seconds: 2,
    comparison: [summary('fedex', fedex, em?.[0] ?? null, 0.1), summary('fedit', fedit, em?.[1] ?? null, 0.1), summary('centralized', 1, null, null)],
  };
}

describe('meanSd', () => {
  test('sample standard deviation (n − 1) of the finite values; nulls and NaN are left out and not counted', () => {
    // 1, 2, 4: mean 7/3, squared deviations 16/9 + 1/9 + 25/9 = 42/9, / 2 = 7/3.
    const s = meanSd([1, 2, null, 4, Number.NaN]);

    assert.equal(s.n, 3);
    assert.ok(Math.abs(s.mean! - 7 / 3) < 1e-15);
    assert.ok(Math.abs(s.sd! - Math.sqrt(7 / 3)) < 1e-15);
    assert.deepEqual(meanSd([2.5]), { n: 1, mean: 2.5, sd: null });
    assert.deepEqual(meanSd([null]), { n: 0, mean: null, sd: null });
  });

  test('formatStat', () => {
    assert.equal(formatStat({ n: 2, mean: 1.5, sd: 0.25 }, (x) => x.toFixed(2)), '1.50 ± 0.25');
    assert.equal(formatStat({ n: 1, mean: 1.5, sd: null }, (x) => x.toFixed(2)), '1.50');
    assert.equal(formatStat({ n: 0, mean: null, sd: null }, (x) => x.toFixed(2)), '–');
  });
});

describe('summarizeRuns', () => {
  test('per method mean ± sd over seeds, and the gap paired by seed', () => {
    // FedEx is better by exactly 0.1 on every seed, while the seeds move both losses by ±1:
    // the paired gap has sd 0 and exceeds the spread, though the means' intervals overlap.
    const runs = [run(0, null, 2.0, 2.1, [0.5, 0.4]), run(1, null, 3.0, 3.1, [0.7, 0.5]), run(2, null, 4.0, 4.1, [0.6, 0.6])];

    const [point] = summarizeRuns(runs, ['fedex', 'fedit', 'centralized'], null);

    const fedex = point.methods.find((m) => m.method === 'fedex')!;
    assert.equal(fedex.evalLoss.n, 3);
    assert.ok(Math.abs(fedex.evalLoss.mean! - 3) < 1e-12);
    assert.ok(Math.abs(fedex.evalLoss.sd! - 1) < 1e-12);
    assert.equal(point.methods.find((m) => m.method === 'centralized')!.exactMatch.n, 0);
    const gap = point.gap!;
    assert.ok(Math.abs(gap.evalLoss.mean! + 0.1) < 1e-12);
    assert.ok(gap.evalLoss.sd! < 1e-12);
    assert.ok(Math.abs(gap.evalLoss.spread! - 1) < 1e-12);
    assert.equal(gap.evalLoss.exceedsSpread, false, '|−0.1| is not above a spread of 1');
    // Exact match gaps 0.1, 0.2, 0: mean 0.1, sd 0.1; spreads sd(0.5,0.7,0.6) = 0.1, sd(0.4,0.5,0.6) = 0.1.
    assert.ok(Math.abs(gap.exactMatch.mean! - 0.1) < 1e-12);
    assert.ok(Math.abs(gap.exactMatch.sd! - 0.1) < 1e-12);
    assert.equal(gap.exactMatch.exceedsSpread, false);
    assert.deepEqual(point.seeds, [0, 1, 2]);
  });

  test("a gap larger than both methods' spread is flagged; points follow the sweep order", () => {
    const runs = [run(0, 50, 1.0, 2.0), run(1, 50, 1.1, 2.1), run(0, 5, 1.0, 1.0), run(1, 5, 1.2, 1.2)];

    const points = summarizeRuns(runs, ['fedex', 'fedit'], [50, 5]);

    assert.deepEqual(points.map((p) => p.sweepValue), [50, 5]);
    assert.equal(points[0].gap!.evalLoss.exceedsSpread, true);
    assert.equal(points[1].gap!.evalLoss.mean, 0);
    assert.equal(points[1].gap!.evalLoss.exceedsSpread, false);
    assert.equal(points[0].localSteps, 50);
  });

  test('no gap without both fedex and fedit; a sweep value with no run is an error', () => {
    const runs = [run(0, null, 1, 2)];

    assert.equal(summarizeRuns(runs, ['fedex', 'centralized'], null)[0].gap, null);
    assert.equal(summarizeRuns(runs, ['fedex', 'fedit'], null)[0].gap!.evalLoss.exceedsSpread, null, 'one seed: no spread');
    assert.throws(() => summarizeRuns(runs, ['fedex'], [7]), /no run at sweep value 7/);
  });
});

describe('planRuns', () => {
  test('seeds inside sweep values, labels as folders, the swept value overriding its flag', () => {
    const plan = planRuns({ seed: 4, seeds: 2, clients: 3, localSteps: 10, sweep: { axis: 'clients', values: [2, 8] } });

    assert.deepEqual(plan.map((p) => [p.label, p.seed, p.clients, p.localSteps]), [
      ['clients-2/seed-4', 4, 2, 10],
      ['clients-2/seed-5', 5, 2, 10],
      ['clients-8/seed-4', 4, 8, 10],
      ['clients-8/seed-5', 5, 8, 10],
    ]);
    assert.deepEqual(planRuns({ seed: 0, seeds: 1, clients: 3, localSteps: 10 }).map((p) => p.label), ['.'], 'one run: straight into out');
    assert.deepEqual(planRuns({ seed: 0, seeds: 3, clients: 3, localSteps: 10 }).map((p) => p.label), ['seed-0', 'seed-1', 'seed-2']);
    assert.throws(() => planRuns({ seed: 0, seeds: 0, clients: 3, localSteps: 10 }), /seeds must be a positive integer, got 0/);
  });
});
