// The dashboard state survives setState/getState (structured JSON) and a VS Code reload: a round
// trip gives the same model, a foreign or broken saved state gives a fresh one, and a later `init`
// keeps the user's choices and the federations the extension no longer knows.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DASHBOARD_PROTOCOL_VERSION } from '../../src/extension/dashboard/messages.js';
import { initialFederation, reduceFederation } from '../../src/extension/state/federationState.js';
import { createDashboardState, DASHBOARD_STATE_VERSION } from '../../webview/model.js';
import { applyMessage, restoreState, serializeState } from '../../webview/state.js';
import { lossSeries, selectedRun } from '../../webview/series.js';
import { replayed } from './helpers.js';

describe('dashboard state restore', () => {
  test('serialise → restore gives the same model (as text and as a structured clone)', () => {
    const state = replayed();
    state.ui = { run: 'fedit', module: 'transformer.h.1.mlp.c_fc', round: 2, factor: 'a' };
    const text = serializeState(state);
    assert.deepEqual(restoreState(text), state);
    assert.deepEqual(restoreState(structuredClone(state)), state);
    assert.deepEqual(restoreState(JSON.parse(text)), JSON.parse(text));
    const view = restoreState(text).federations[0];
    assert.deepEqual(lossSeries(view, selectedRun(view, 'fedit')!), lossSeries(state.federations[0], selectedRun(state.federations[0], 'fedit')!));
  });

  test('missing, foreign-version or malformed saved states give a fresh dashboard', () => {
    const fresh = createDashboardState();
    for (const saved of [undefined, null, 42, 'not json {', '[]', { version: DASHBOARD_STATE_VERSION + 1, federations: [] }, { version: DASHBOARD_STATE_VERSION }]) {
      assert.deepEqual(restoreState(saved), fresh, `saved = ${JSON.stringify(saved)}`);
    }
  });

  test('malformed federations are dropped, the rest kept; bad ui fields fall back', () => {
    const good = replayed();
    const saved = JSON.parse(serializeState(good)) as Record<string, unknown>;
    saved.federations = [...(saved.federations as unknown[]), { id: 'x' }, { id: 'y', label: 'y', runs: [{ key: '' }], notes: [] }, 7];
    saved.ui = { run: 5, module: 'm', round: 'latest', factor: 'c' };
    saved.selected = 'gone';
    const restored = restoreState(saved);
    assert.deepEqual(restored.federations.map((f) => f.id), ['sim']);
    assert.deepEqual(restored.ui, { run: null, module: 'm', round: null, factor: 'b' });
    assert.equal(restored.selected, 'sim');
  });

  test('init after a reload: new states replace, unknown federations stay as restored, choices stay', () => {
    const before = replayed();
    before.ui = { run: 'fedit', module: null, round: 1, factor: 'b' };
    const restored = restoreState(serializeState(before));
    const live = reduceFederation(initialFederation({ id: 'live', label: 'new host', kind: 'host' }), { type: 'round_started', time: 1, round: 1, sampled: ['a'], quorum: 1, deadline: 2, baseRevision: 0 });
    const after = applyMessage(restored, { type: 'init', version: DASHBOARD_PROTOCOL_VERSION, federations: [live], selected: null, theme: 'light' });
    assert.deepEqual(after.federations.map((f) => [f.id, after.restored.includes(f.id), f.live]), [['live', false, true], ['sim', true, false]]);
    assert.equal(after.selected, 'sim', 'the restored selection is kept');
    assert.equal(after.ui.run, 'fedit');
    assert.equal(after.federations[1].runs[0].rounds.length, 3, 'restored data kept');
    assert.equal(after.federations[0].runs[0].phase, 'training');
  });
});
