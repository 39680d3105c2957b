import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProtocolErrorCode } from '../../../src/federation/protocol/errors.js';
import type { Method } from '../../../src/federation/protocol/messages.js';
import { advanceSession, INITIAL_SESSION, negotiateVersion, type SessionState } from '../../../src/federation/protocol/sessionState.js';

type Step = [from: 'client' | 'coordinator', method: Method, params?: Record<string, unknown>];

function run(steps: readonly Step[], start: SessionState = INITIAL_SESSION): SessionState {
  return steps.reduce((state, [from, method, params]) => advanceSession(state, from, { method, params: params ?? {} }), start);
}

function rejects(state: SessionState, step: Step, code: ProtocolErrorCode): void {
  assert.throws(() => run([step], state), { code });
}

const joined: Step[] = [['client', 'hello'], ['coordinator', 'welcome', { currentRound: 0 }]];

describe('session state machine (client view)', () => {
  test('a full federation: handshake, two rounds, done', () => {
    const end = run([
      ...joined,
      ['coordinator', 'round_start', { round: 1 }],
      ['client', 'ping'],
      ['coordinator', 'pong'],
      ['client', 'client_update', { round: 1 }],
      ['coordinator', 'update_ack', { round: 1 }],
      ['coordinator', 'round_closed', { round: 1 }],
      ['coordinator', 'round_start', { round: 2 }],
      ['client', 'client_update', { round: 2 }],
      ['coordinator', 'round_closed', { round: 2 }],
      ['coordinator', 'federation_done'],
    ]);
    assert.deepEqual(end, { phase: 'done', round: 2, closedRound: 2 });
  });

  test('before welcome only hello, ping/pong and reject/error are allowed', () => {
    rejects(INITIAL_SESSION, ['client', 'client_update', { round: 1 }], 'E_STATE');
    rejects(INITIAL_SESSION, ['coordinator', 'welcome', { currentRound: 0 }], 'E_STATE');
    const handshaking = run([['client', 'hello']]);
    rejects(handshaking, ['client', 'hello'], 'E_STATE');
    rejects(handshaking, ['coordinator', 'round_start', { round: 1 }], 'E_STATE');
    rejects(handshaking, ['client', 'model_request'], 'E_STATE');
    assert.equal(run([['coordinator', 'reject']], handshaking).phase, 'closed');
  });

  test('a late upload for a closed round is refused with E_ROUND_CLOSED', () => {
    const closed = run([...joined, ['coordinator', 'round_start', { round: 1 }], ['coordinator', 'round_closed', { round: 1 }]]);

    rejects(closed, ['client', 'client_update', { round: 1 }], 'E_ROUND_CLOSED');
    // The client that missed the close still gets the late rejection in order.
    assert.equal(run([['coordinator', 'update_rejected', { round: 1 }]], closed).phase, 'idle');
  });

  test('second upload → E_DUPLICATE; wrong round → E_ROUND_MISMATCH; old round_start → E_ROUND_MISMATCH', () => {
    const uploaded = run([...joined, ['coordinator', 'round_start', { round: 3 }], ['client', 'client_update', { round: 3 }]]);
    rejects(uploaded, ['client', 'client_update', { round: 3 }], 'E_DUPLICATE');
    rejects(uploaded, ['client', 'client_update', { round: 4 }], 'E_ROUND_MISMATCH');
    rejects(uploaded, ['coordinator', 'round_start', { round: 3 }], 'E_ROUND_MISMATCH');
    rejects(uploaded, ['coordinator', 'update_ack', { round: 4 }], 'E_ROUND_MISMATCH');
    rejects(uploaded, ['coordinator', 'round_closed', { round: 2 }], 'E_ROUND_MISMATCH');
  });

  test('a client joining mid-federation may be given the running round, not a closed one', () => {
    const late = run([['client', 'hello'], ['coordinator', 'welcome', { currentRound: 5 }]]);
    assert.deepEqual(late, { phase: 'idle', round: 0, closedRound: 4 });
    rejects(late, ['coordinator', 'round_start', { round: 4 }], 'E_ROUND_MISMATCH');
    assert.equal(run([['coordinator', 'round_start', { round: 5 }]], late).phase, 'training');
    // Not sampled for round 5: the close still reaches it.
    assert.equal(run([['coordinator', 'round_closed', { round: 5 }]], late).closedRound, 5);
  });

  test('a fatal error or leave closes; nothing follows a close; wrong sender → E_DIRECTION', () => {
    const idle = run(joined);
    assert.equal(run([['coordinator', 'error', { fatal: false }]], idle).phase, 'idle');
    const closed = run([['client', 'error', { fatal: true }]], idle);
    assert.equal(closed.phase, 'closed');
    rejects(closed, ['client', 'ping'], 'E_STATE');
    assert.equal(run([['client', 'leave']], idle).phase, 'closed');
    rejects(idle, ['client', 'round_start', { round: 1 }], 'E_DIRECTION');
  });
});

test('negotiateVersion: min of the minors; a different major → E_VERSION', () => {
  assert.equal(negotiateVersion({ protocolMajor: 1, protocolMinor: 7 }, 2), 2);
  assert.equal(negotiateVersion({ protocolMajor: 1, protocolMinor: 0 }, 2), 0);
  assert.throws(() => negotiateVersion({ protocolMajor: 2, protocolMinor: 0 }), { code: 'E_VERSION' });
});
