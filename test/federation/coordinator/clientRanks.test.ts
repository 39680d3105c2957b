// The coordinator's side of heterogeneous client ranks and of FLoRA (protocol 1.3): the plan's client
// ranks are checked (each message names what is wrong), a hello's rank is admitted or refused with
// E_RANK, a FLoRA federation refuses clients below 1.3 with E_VERSION, and welcome carries the ranks
// only to 1.3 clients (a 1.2 client could not parse them).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolvePlan } from '../../../src/federation/coordinator/config.js';
import { admitHello, welcomeParams } from '../../../src/federation/coordinator/handshake.js';
import { Welcome, type ParamsOf } from '../../../src/federation/protocol/messages.js';
import { BASE, coordinatorConfig, TOKEN } from './fixtures.js';

function hello(overrides: Partial<ParamsOf<'hello'>> = {}): ParamsOf<'hello'> {
  return {
    protocolMajor: 1,
    protocolMinor: 3,
    token: TOKEN,
    clientName: 'c',
    clientId: 'c1',
    device: 'cpu',
    baseModelHash: BASE.hash,
    capabilities: { uplinkDtypes: ['float32'], factoredResidual: true, modelTransfer: false, maxFrameBytes: 1 << 20 },
    ...overrides,
  };
}

const rank4 = { lora: { rank: 4, alpha: 8, targetModules: ['c_attn'] } };

describe('client ranks in the coordinator plan and handshake', () => {
  test('the plan keeps the distinct ranks below the global one, ascending', () => {
    assert.deepEqual(resolvePlan(coordinatorConfig('unused', { ...rank4, clientRanks: [2, 1, 4, 2] })).clientRanks, [1, 2]);
    assert.equal(resolvePlan(coordinatorConfig('unused', { ...rank4, clientRanks: [4] })).clientRanks, undefined);
    assert.equal(resolvePlan(coordinatorConfig('unused', { method: 'flora', ...rank4, clientRanks: [2] })).method, 'flora');
  });

  test('bad plans are refused naming the setting', () => {
    const bad: [object, RegExp][] = [
      [{ ...rank4, clientRanks: [8] }, /clientRanks: every rank must be an integer in 1\.\.4 \(lora\.rank, the global rank\), got 8/],
      [{ ...rank4, clientRanks: [0] }, /clientRanks: every rank must be an integer in 1\.\.4/],
      [{ ...rank4, method: 'fedit', clientRanks: [2] }, /clientRanks 2: method fedit cannot take clients below the global rank 4 exactly; use fedex or flora/],
      [{ ...rank4, method: 'ffa', clientRanks: [2] }, /method ffa cannot take clients below the global rank/],
      [{ ...rank4, clientRanks: [2], privacy: { clip: 1, noiseMultiplier: 1 } }, /client-level DP cannot be combined with clientRanks/],
      [{ method: 'flora', privacy: { clip: 1, noiseMultiplier: 1 } }, /client-level DP is not implemented for flora/],
      [{ ...rank4, clientRanks: [2], aggregation: { name: 'median' }, minClients: 3 }, /clientRanks cannot be combined with aggregation median/],
    ];
    for (const [overrides, message] of bad) assert.throws(() => resolvePlan(coordinatorConfig('unused', overrides)), message);
  });

  test('a hello names an allowed rank, the global rank or none; another is refused with E_RANK', () => {
    const plan = resolvePlan(coordinatorConfig('unused', { ...rank4, clientRanks: [2] }));
    const ctx = { plan, auth: { kind: 'token' as const, token: TOKEN }, joined: 0, offersModel: false };
    const ok = admitHello(hello({ rank: 2 }), ctx);
    assert.ok(ok.ok && ok.rank === 2);
    assert.ok(admitHello(hello({ rank: 4 }), ctx).ok);
    const none = admitHello(hello(), ctx);
    assert.ok(none.ok && none.rank === undefined);
    const refused = admitHello(hello({ rank: 3 }), ctx);
    assert.ok(!refused.ok);
    assert.equal(refused.code, 'E_RANK');
    assert.match(refused.message, /trains at rank 4 and lets clients train at 2; the client asked for rank 3/);
    const fixed = resolvePlan(coordinatorConfig('unused', rank4));
    const only = admitHello(hello({ rank: 2 }), { ...ctx, plan: fixed });
    assert.ok(!only.ok && only.code === 'E_RANK' && /trains at rank 4 only/.test(only.message));
  });

  test("welcome: the ranks and the client's rank go to 1.3 clients; a FLoRA federation refuses older ones", () => {
    const plan = resolvePlan(coordinatorConfig('unused', { ...rank4, clientRanks: [2] }));
    const w3 = welcomeParams(plan, { sessionId: 's', minor: 3, currentRound: 0, uplinkDtype: 'float32', rank: 2 });
    assert.deepEqual(w3.config.clientRanks, [2]);
    assert.equal(w3.rank, 2);
    assert.ok(Welcome.is(w3), 'a valid welcome');
    const w2 = welcomeParams(plan, { sessionId: 's', minor: 2, currentRound: 0, uplinkDtype: 'float32' });
    assert.equal(w2.config.clientRanks, undefined);
    const flora = resolvePlan(coordinatorConfig('unused', { method: 'flora' }));
    const old = admitHello(hello({ protocolMinor: 2 }), { plan: flora, auth: { kind: 'token', token: TOKEN }, joined: 0, offersModel: false });
    assert.ok(!old.ok && old.code === 'E_VERSION' && /method flora, which needs protocol 1\.3; the client speaks 1\.2/.test(old.message));
    assert.ok(admitHello(hello(), { plan: flora, auth: { kind: 'token', token: TOKEN }, joined: 0, offersModel: false }).ok);
  });
});
