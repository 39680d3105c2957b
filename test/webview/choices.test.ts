// The user's choices (applyChoice, what main.ts runs for the toolbar and the sections). The module
// picker switches the heatmap from the state alone: every module's latest heatmap is in it, so the
// dashboard asks the extension nothing (`selectModule` was a message the extension only logged; it
// is gone from the protocol, see messages.test.ts) and the choice survives a reload.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyChoice, applyMessage, restoreState, serializeState } from '../../webview/state.js';
import { heatmapModules, selectedHeatmap, selectedRound, selectedRun } from '../../webview/series.js';
import { fixtureEvents, replayed } from './helpers.js';

describe('dashboard choices', () => {
  test('choosing a module shows its heatmap, of the latest round, and the choice survives a reload', () => {
    // prepare
    const state = replayed();
    const run = selectedRun(state.federations[0], 'fedit')!;
    const modules = heatmapModules(run);
    assert.equal(modules.length, 8);
    assert.equal(selectedHeatmap(run, state.ui.module)?.module, modules[0], 'the first module by default');
    const latest = fixtureEvents().filter((e) => e.type === 'update_heatmap' && e.method === 'fedit').at(-1)!;
    const raw = (latest.modules as { module: string; values: number[] }[]).find((m) => m.module === modules[5])!;
    // act
    applyChoice(state, { kind: 'run', value: 'fedit' });
    applyChoice(state, { kind: 'module', value: modules[5] });
    // assert
    const shown = selectedHeatmap(selectedRun(state.federations[0], state.ui.run)!, state.ui.module)!;
    assert.equal(shown.module, modules[5]);
    assert.equal(shown.round, latest.round);
    assert.deepEqual(shown.values, raw.values);
    assert.equal(restoreState(serializeState(state)).ui.module, modules[5]);
  });

  test('a module the run does not have falls back to the first; another federation resets module, run and round', () => {
    const state = replayed();
    applyChoice(state, { kind: 'module', value: 'transformer.h.9.mlp.c_fc' });
    const run = selectedRun(state.federations[0], state.ui.run)!;
    assert.equal(selectedHeatmap(run, state.ui.module)?.module, heatmapModules(run)[0]);
    applyChoice(state, { kind: 'round', value: 2 });
    assert.equal(selectedRound(run, state.ui.round)?.round, 2);
    applyMessage(state, { type: 'events', federationId: 'other', events: [] });
    applyChoice(state, { kind: 'federation', value: 'other' });
    assert.deepEqual([state.selected, state.ui.module, state.ui.run, state.ui.round], ['other', null, null, null]);
  });

  test('export is a request, not a choice: it leaves the model alone', () => {
    const state = replayed();
    const before = serializeState(state);
    applyChoice(state, { kind: 'export' });
    assert.equal(serializeState(state), before);
  });
});
