// The coordinator's limits before authentication as pure logic over a fake clock: the exponential
// throttle of failed joins, the per-address and total budgets of the rejection log and its
// summaries, and the limit settings' defaults and validation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AdmissionLimits, AuthThrottle, DEFAULT_ADMISSION_LIMITS, LOG_TOTAL_PER_WINDOW, LOG_WINDOW_MS, RejectionLog, type RejectionEvent } from '../../../src/federation/coordinator/admissionLimits.js';
import { resolvePlan } from '../../../src/federation/coordinator/config.js';
import type { Admission } from '../../../src/federation/coordinator/handshake.js';
import { coordinatorConfig } from './fixtures.js';

const WRONG: Admission = { ok: false, code: 'E_AUTH', message: 'the join token is wrong' };
const RIGHT: Admission = { ok: true, minor: 1, uplinkDtype: 'float32', fetching: false };

describe('AuthThrottle', () => {
  test('free failures, then waits of 1, 2, 4 … s, capped; attempts while waiting do not lengthen it', () => {
    const t = new AuthThrottle(3, 1_000);
    for (let i = 0; i < 2; i++) t.failed('a', 0);
    assert.equal(t.blockedFor('a', 0), 0);
    t.failed('a', 0);
    assert.equal(t.blockedFor('a', 0), 1_000);
    assert.equal(t.blockedFor('a', 500), 500, 'waiting attempts do not restart the wait');
    assert.equal(t.blockedFor('b', 500), 0, 'other addresses are not affected');
    t.failed('a', 1_000);
    assert.equal(t.blockedFor('a', 1_000), 2_000);
    t.failed('a', 3_000);
    assert.equal(t.blockedFor('a', 3_000), 4_000);
    for (let i = 0; i < 20; i++) t.failed('a', 10_000);
    assert.equal(t.blockedFor('a', 10_000), 300_000, 'capped at AUTH_MAX_BACKOFF_MS');
  });

  test('failures are forgotten a quiet minute after the last wait ended, not earlier', () => {
    const t = new AuthThrottle(2, 1_000);
    t.failed('a', 0);
    t.failed('a', 0);
    // Blocked until 1 000; quiet until 61 000 → still remembered at 60 999: one more failure blocks for 2 s.
    t.failed('a', 60_999);
    assert.equal(t.blockedFor('a', 60_999), 2_000);
    t.failed('b', 0);
    t.failed('b', 0);
    t.failed('b', 61_001);
    assert.equal(t.blockedFor('b', 61_001), 0, 'forgotten: this is its first failure again');
  });
});

describe('RejectionLog', () => {
  test('the first N of an address are logged, the rest summarised with their codes at the end of the window', () => {
    const log = new RejectionLog(3);
    const verdicts = Array.from({ length: 10 }, (_, i) => log.admit('10.0.0.1', i % 2 === 0 ? 'E_AUTH' : 'E_MAGIC', 1_000 + i).log);
    assert.deepEqual(verdicts, [true, true, true, false, false, false, false, false, false, false]);
    assert.equal(log.admit('10.0.0.2', 'E_FULL', 2_000).log, true, 'another address has its own budget');
    assert.equal(log.windowEnd, 1_000 + LOG_WINDOW_MS);
    // The first rejection after the window ends it: its summaries come back with the verdict.
    const next = log.admit('10.0.0.1', 'E_AUTH', 1_000 + LOG_WINDOW_MS);
    assert.equal(next.log, true);
    assert.deepEqual(next.summaries, [{ remote: '10.0.0.1', code: 'E_MAGIC', message: '7 more rejected from 10.0.0.1 in the last minute (E_MAGIC ×4, E_AUTH ×3); not logged one by one' }]);
  });

  test('past the total budget, rejections of any address are counted into one summary', () => {
    const log = new RejectionLog(1);
    const logged = Array.from({ length: LOG_TOTAL_PER_WINDOW + 50 }, (_, i) => log.admit(`10.0.${i >> 8}.${i & 255}`, 'E_FULL', 0).log);
    assert.equal(logged.filter(Boolean).length, LOG_TOTAL_PER_WINDOW);
    assert.deepEqual(log.flush(), [{ remote: '50 addresses', code: 'E_FULL', message: '50 more rejected from 50 addresses in the last minute (E_FULL ×50); not logged one by one' }]);
  });
});

describe('AdmissionLimits', () => {
  function limits(now: { t: number }): { a: AdmissionLimits; logged: RejectionEvent[]; timers: { at: number; fn: () => void }[] } {
    const logged: RejectionEvent[] = [];
    const timers: { at: number; fn: () => void }[] = [];
    const a = new AdmissionLimits(() => ({ ...DEFAULT_ADMISSION_LIMITS, authFailuresPerAddress: 2, rejectionsLoggedPerAddress: 1 }), {
      log: (e) => logged.push(e),
      now: () => now.t,
      schedule: (fn, ms) => {
        const timer = { at: now.t + ms, fn };
        timers.push(timer);
        return () => void timers.splice(timers.indexOf(timer), 1);
      },
    });
    return { a, logged, timers };
  }

  test('a throttled address is refused with retryAfterMs without the token check running', () => {
    const now = { t: 0 };
    const { a } = limits(now);
    let checks = 0;
    const check = (v: Admission) => (): Admission => {
      checks++;
      return v;
    };
    assert.equal(a.screen('127.0.0.2:1', check(WRONG)), WRONG);
    assert.equal(a.screen('127.0.0.2:2', check(WRONG)), WRONG);
    const refused = a.screen('127.0.0.2:3', check(RIGHT));
    assert.equal(checks, 2, 'the third hello was not checked');
    assert.deepEqual(refused, { ok: false, code: 'E_THROTTLED', message: 'too many failed joins from 127.0.0.2; wait 1.0 s before trying again', retryAfterMs: 1_000 });
    assert.equal(a.screen('127.0.0.3:1', check(RIGHT)), RIGHT, 'another address');
    now.t = 1_000;
    assert.equal(a.screen('127.0.0.2:4', check(RIGHT)), RIGHT, 'after the wait, a right token gets in');
  });

  test('suppressed rejections arm one timer for the end of the window, which logs the summary', () => {
    const now = { t: 5_000 };
    const { a, logged, timers } = limits(now);
    assert.equal(a.shouldLog('127.0.0.2:1', 'E_AUTH'), true);
    assert.equal(timers.length, 0);
    assert.equal(a.shouldLog('127.0.0.2:2', 'E_AUTH'), false);
    assert.equal(a.shouldLog('127.0.0.2:3', 'E_TIMEOUT'), false);
    assert.equal(timers.length, 1);
    assert.equal(timers[0].at, 5_000 + LOG_WINDOW_MS);
    now.t = timers[0].at;
    timers.shift()!.fn();
    assert.deepEqual(logged, [{ remote: '127.0.0.2', code: 'E_AUTH', message: '2 more rejected from 127.0.0.2 in the last minute (E_AUTH ×1, E_TIMEOUT ×1); not logged one by one' }]);
  });

  test('transport refusals are logged under a protocol code, within the same budget', () => {
    const { a, logged } = limits({ t: 0 });
    const o = a.preAuthOptions(10_000);
    assert.deepEqual({ ...o, onRefused: undefined }, { maxConnections: 1024, maxPendingPerAddress: 32, maxFrameBytes: 65_536, upgradeTimeoutMs: 10_000, onRefused: undefined });
    o.onRefused!({ remote: '127.0.0.2:7', reason: 'frame_too_large', message: 'too big' });
    o.onRefused!({ remote: '127.0.0.2:8', reason: 'too_many_pending', message: 'too many' });
    assert.deepEqual(logged, [{ remote: '127.0.0.2:7', code: 'E_TOO_LARGE', message: 'too big' }]);
  });
});

describe('limit settings', () => {
  test('a plan carries the defaults; maxConnections makes room for maxClients', () => {
    const plan = resolvePlan(coordinatorConfig('/unused'));
    assert.deepEqual(
      { maxConnections: plan.limits.maxConnections, maxPendingPerAddress: plan.limits.maxPendingPerAddress, preAuthMaxFrameBytes: plan.limits.preAuthMaxFrameBytes, authFailuresPerAddress: plan.limits.authFailuresPerAddress,
        authBackoffMs: plan.limits.authBackoffMs, rejectionsLoggedPerAddress: plan.limits.rejectionsLoggedPerAddress },
      DEFAULT_ADMISSION_LIMITS,
    );
    assert.equal(resolvePlan(coordinatorConfig('/unused', { maxClients: 5_000 })).limits.maxConnections, 5_024);
    assert.equal(resolvePlan(coordinatorConfig('/unused', { limits: { maxFrameBytes: 8192 } })).limits.preAuthMaxFrameBytes, 8192);
  });

  test('nonsense is refused, naming the setting', () => {
    const bad: [Record<string, number>, RegExp][] = [
      [{ maxConnections: 10 }, /limits\.maxConnections \(10\) must be at least maxClients \(1000\)/],
      [{ maxConnections: 2_000, maxPendingPerAddress: 3_000 }, /limits\.maxPendingPerAddress must be an integer in 1\.\.2000/],
      [{ preAuthMaxFrameBytes: 1_000 }, /limits\.preAuthMaxFrameBytes must be ≥ 4096/],
      [{ preAuthMaxFrameBytes: 128 << 20 }, /limits\.preAuthMaxFrameBytes must be an integer in 1\.\.67108864/],
      [{ authFailuresPerAddress: 0 }, /limits\.authFailuresPerAddress/],
      [{ authBackoffMs: 1e9 }, /limits\.authBackoffMs must be an integer in 1\.\.300000/],
      [{ rejectionsLoggedPerAddress: -1 }, /limits\.rejectionsLoggedPerAddress must be an integer ≥ 0/],
    ];
    for (const [limits, message] of bad) assert.throws(() => resolvePlan(coordinatorConfig('/unused', { limits })), message);
  });
});
