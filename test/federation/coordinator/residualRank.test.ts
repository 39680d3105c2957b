// The coordinator's plan for --residual-rank: FedEx only, and every module through the strategy
// (the accumulated sums would give the exact residual).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolvePlan } from '../../../src/federation/coordinator/config.js';
import { coordinatorConfig } from './fixtures.js';

test('residualRank: fedex only, incremental aggregation off, refused with incrementalAggregation always', () => {
  const plan = resolvePlan(coordinatorConfig('unused', { residualRank: 2 }));
  assert.equal(plan.residualRank, 2);
  assert.equal(plan.incrementalAggregation, 'off');
  assert.equal(resolvePlan(coordinatorConfig('unused', {})).residualRank, undefined);
  assert.throws(() => resolvePlan(coordinatorConfig('unused', { method: 'fedit', residualRank: 2 })), /residualRank applies to fedex only, not fedit/);
  assert.throws(() => resolvePlan(coordinatorConfig('unused', { residualRank: 2, incrementalAggregation: 'always' })), /incrementalAggregation always cannot be combined with residualRank/);
  assert.throws(() => resolvePlan(coordinatorConfig('unused', { residualRank: 0 })), /residualRank/);
});
