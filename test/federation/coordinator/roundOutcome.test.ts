// applyRoundOutcome: the coordinator state after a round, as a pure function (like roundState.ts):
// an aggregated round advances the global adapter, the completed count and the participants'
// records; a FedEx base step bumps the revision and names the new base file; a round that
// aggregated nothing only moves the round counter; the input state is never changed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoraFactors } from '../../../src/core/lora.js';
import type { CoordinatorState } from '../../../src/federation/coordinator/coordinator.js';
import { applyRoundOutcome } from '../../../src/federation/coordinator/roundRunner.js';
import { RunStore } from '../../../src/federation/coordinator/store.js';

const factors = (v: number): LoraFactors => ({ a: { shape: [1, 2], data: new Float32Array([v, v]) }, b: { shape: [2, 1], data: new Float32Array([v, v]) } });

function state(): CoordinatorState {
  const files = RunStore.fileNames(2, 1);
  return {
    round: 2,
    revision: 1,
    roundsCompleted: 2,
    global: new Map([['m', factors(1)]]),
    base: new Map(),
    registry: new Map([['a', { clientId: 'a', name: 'A', sessionId: 's', firstSeen: 0, lastSeen: 10, roundsParticipated: 2 }], ['b', { clientId: 'b', name: 'B', sessionId: 't', firstSeen: 0, lastSeen: 10, roundsParticipated: 1 }]]),
    history: [],
    globalFile: files.globalFile,
    baseFile: files.baseFile,
    done: null,
  };
}

test('an aggregated FedEx round with a base step', () => {
  const before = state();
  const frozen = JSON.stringify({ ...before, global: [...before.global], registry: [...before.registry] });
  const step = [{ module: 'm' }] as never;
  const { state: after, step: recorded } = applyRoundOutcome(before, 3, { global: new Map([['m', factors(2)]]), stepModules: step }, ['a'], 99);
  assert.deepEqual([after.round, after.roundsCompleted, after.revision], [3, 3, 2]);
  assert.equal(after.global.get('m')!.a.data[0], 2);
  assert.deepEqual(recorded, { revision: 2, round: 3, modules: step });
  assert.deepEqual([after.globalFile, after.baseFile], [RunStore.fileNames(3, 2).globalFile, RunStore.fileNames(3, 2).baseFile]);
  assert.deepEqual([after.registry.get('a')!.roundsParticipated, after.registry.get('a')!.lastSeen], [3, 99]);
  assert.equal(after.registry.get('b')!.roundsParticipated, 1, 'only participants are counted');
  assert.equal(JSON.stringify({ ...before, global: [...before.global], registry: [...before.registry] }), frozen, 'the input state is unchanged');
});

test('an aggregated round without a base change (FedIT, FFA) keeps the revision and base file', () => {
  const before = state();
  const { state: after, step } = applyRoundOutcome(before, 3, { global: new Map([['m', factors(2)]]), stepModules: [] }, ['a', 'b'], 5);
  assert.deepEqual([after.round, after.roundsCompleted, after.revision, after.baseFile], [3, 3, 1, before.baseFile]);
  assert.equal(step, undefined);
});

test('a round that aggregated nothing only advances the round', () => {
  const before = state();
  const { state: after, step } = applyRoundOutcome(before, 3, null, ['a'], 5);
  assert.deepEqual({ ...after, round: 2 }, before);
  assert.equal(after.round, 3);
  assert.equal(step, undefined);
});
