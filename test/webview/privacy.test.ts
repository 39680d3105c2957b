// The dashboard's reading of client-level DP (RoundRecord.privacy): the recorded stream (no DP) shows
// no DP column, a record's ε reaches the rounds table and the progress panel's summary, and
// malformed or unbounded values are read defensively. (Real streams with DP: test/cli/privacy.test.ts.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { initialFederation, reduceFederation, type FederationState } from '../../src/extension/state/federationState.js';
import { privacySummary, roundRows, selectedRun } from '../../webview/series.js';
import type { DashboardEvent } from '../../src/extension/dashboard/messages.js';
import { fixtureEvents, replayed } from './helpers.js';

/** A fixture round_closed of fedex with `privacy` set to `value` (or removed when undefined). */
function withPrivacy(round: number, value: unknown): DashboardEvent {
  const raw = fixtureEvents().find((e) => e.type === 'round_closed' && e.method === 'fedex' && e.round === round)!;
  const copy: Record<string, unknown> = { ...raw };
  if (value === undefined) delete copy.privacy;
  else copy.privacy = value;
  return copy as unknown as DashboardEvent;
}

function host(events: readonly DashboardEvent[]): FederationState {
  return events.reduce((s, e) => reduceFederation(s, { ...e, method: undefined } as DashboardEvent), initialFederation({ id: 'h', label: 'host', kind: 'host' }));
}

describe('dashboard: client-level DP', () => {
  test('a federation without DP has no ε anywhere', () => {
    const run = selectedRun(replayed().federations[0], 'fedex')!;
    assert.ok(roundRows(run).every((r) => !('epsilon' in r)));
    assert.equal(privacySummary(run), null);
  });

  test("each round's ε reaches its row, and the latest the summary; ε null (σ = 0) stays null (shown ∞)", () => {
    const view = host([
      withPrivacy(1, { epsilon: 2.5, delta: 1e-5, releases: 1, clipped: 3, updateNorms: [0.2, 0.3, 0.4], noiseStd: 0.01 }),
      withPrivacy(2, { epsilon: 3.75, delta: 1e-5, releases: 2, clipped: 1, updateNorms: [0.01, 0.3, 0.02], noiseStd: 0.01 }),
    ]);
    const run = view.runs[0];
    assert.deepEqual(roundRows(run).map((r) => r.epsilon), [2.5, 3.75]);
    assert.deepEqual(privacySummary(run), { epsilon: 3.75, delta: 1e-5, releases: 2, clipped: 1, updates: 3 });
    const unbounded = host([withPrivacy(1, { epsilon: null, delta: 1e-5, releases: 1, clipped: 0, updateNorms: [] })]).runs[0];
    assert.equal(roundRows(unbounded)[0].epsilon, null);
    assert.equal(privacySummary(unbounded)!.epsilon, null);
  });

  test('malformed privacy fields are ignored or read as null, never thrown on', () => {
    for (const bad of [null, 'eps', 42, []]) {
      const run = host([withPrivacy(1, bad)]).runs[0];
      assert.equal(run.rounds.length, 1, JSON.stringify(bad));
      assert.equal(privacySummary(run), null, JSON.stringify(bad));
    }
    const odd = host([withPrivacy(1, { epsilon: 'big', delta: -1, releases: '2', updateNorms: 'x' })]).runs[0];
    assert.deepEqual(privacySummary(odd), { epsilon: null, delta: -1, releases: null, clipped: null, updates: 0 });
  });
});
