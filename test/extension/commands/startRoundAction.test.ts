import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRoundAction } from '../../../src/extension/commands/startRoundAction.js';
import { initialFederation, reduceFederation, type FederationState } from '../../../src/extension/state/federationState.js';
import type { StreamEvent } from '../../../src/extension/process/jsonlLines.js';

const replay = (state: FederationState, events: readonly StreamEvent[]): FederationState => events.reduce(reduceFederation, state);
const joined = (id: string, clients: number): StreamEvent => ({ type: 'client_joined', time: 2, clientId: id, name: id, sessionId: `s-${id}`, resumed: false, clients });
const listening: StreamEvent = { type: 'listening', time: 1, url: 'ws://127.0.0.1:8765', runDir: '/runs/h', resumedFromRound: null };

function hosted(manualRounds: boolean, events: readonly StreamEvent[], totalRounds = 3): FederationState {
  return replay(initialFederation({ id: 'host:1', kind: 'host', label: 'Hosted :8765', totalRounds, manualRounds }), events);
}

describe('startRoundAction', () => {
  test('manual rounds, round ready: send start to that federation, starting round 1 now', () => {
    // prepare
    const s = hosted(true, [listening, joined('a', 1), joined('b', 2), { type: 'round_ready', time: 3, round: 1, clients: 2, minClients: 2 }]);
    // act
    const action = startRoundAction([s], 2);
    // assert
    assert.deepEqual(action, { kind: 'send', federationId: 'host:1', line: 'start', round: 1, startsNow: true, message: 'round 1/3 of Hosted :8765: starting now.' });
  });

  test('manual rounds: before the clients it still sends (the host keeps the grant) and says what it waits for', () => {
    const action = startRoundAction([hosted(true, [listening, joined('a', 1)])], 3);
    assert.equal(action.kind === 'send' ? action.startsNow : action.kind, false, 'a send that does not start now');
    assert.match(action.kind === 'send' ? action.message : '', /^round 1\/3 of Hosted :8765: it starts once 3 clients have joined \(1 so far\)\.$/);
  });

  test('manual rounds during a round: the next round starts when it has closed; after the last round nothing is sent', () => {
    const running = hosted(true, [listening, joined('a', 1), { type: 'round_started', time: 3, round: 2, sampled: ['a'], quorum: 1, deadline: 9, baseRevision: 1 }]);
    const during = startRoundAction([running], 1);
    assert.equal(during.kind === 'send' ? during.message : during.kind, 'round 3/3 of Hosted :8765: it starts when round 2 has closed.');
    const last = hosted(true, [listening, joined('a', 1), { type: 'round_started', time: 3, round: 3, sampled: ['a'], quorum: 1, deadline: 9, baseRevision: 2 }]);
    const none = startRoundAction([last], 1);
    assert.deepEqual(none, { kind: 'inform', federationId: 'host:1', message: 'Hosted :8765 has no round left to start (3 rounds).' });
  });

  test('automatic rounds: inform only, as before', () => {
    const waiting = startRoundAction([hosted(false, [listening, joined('a', 1)])], 2);
    assert.equal(waiting.kind, 'inform');
    assert.match(waiting.kind === 'inform' ? waiting.message : '', /waiting for clients \(1 of 2 joined\): the first round starts once 2 have joined/);
    const running = startRoundAction([hosted(false, [listening, joined('a', 1), { type: 'round_started', time: 3, round: 1, sampled: ['a'], quorum: 1, deadline: 9, baseRevision: 0 }])], 1);
    assert.match(running.kind === 'inform' ? running.message : '', /is at round 1\/3 \(training\); rounds follow one another automatically/);
  });

  test('no live hosted federation (ended hosts and joins do not count): offer the quick pick', () => {
    const ended = { ...hosted(true, [listening]), live: false };
    const join = initialFederation({ id: 'join:1', kind: 'join', label: 'J', url: 'ws://x:1' });
    assert.deepEqual(startRoundAction([ended, join], 2), { kind: 'offer' });
    assert.deepEqual(startRoundAction([], 2), { kind: 'offer' });
  });
});
