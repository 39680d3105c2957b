import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMMAND_IDS, VIEW_IDS } from '../../src/extension/commandIds.js';
import { DEFAULT_SETTINGS } from '../../src/extension/config/cliArgs.js';
import { federationContext } from '../../src/extension/state/treeModel.js';
import { initialFederation } from '../../src/extension/state/federationState.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

interface Manifest {
  icon: string;
  activationEvents: string[];
  contributes: {
    commands: { command: string; title: string; category: string }[];
    viewsContainers: { activitybar: { id: string; icon: string }[] };
    views: Record<string, { id: string }[]>;
    menus: Record<string, { command: string; when?: string }[]>;
    configuration: { properties: Record<string, { default: unknown }> };
  };
}
const manifest = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as Manifest;

describe('package.json contributions', () => {
  test('every registered command is contributed under the FedEx category with an activation event, and no other', () => {
    const contributed = manifest.contributes.commands.map((c) => c.command).sort();
    assert.deepEqual(contributed, [...COMMAND_IDS].sort());
    for (const c of manifest.contributes.commands) assert.equal(c.category, 'FedEx', c.command);
    for (const id of COMMAND_IDS) assert.ok(manifest.activationEvents.includes(`onCommand:${id}`), id);
    const titles = Object.fromEntries(manifest.contributes.commands.map((c) => [c.command, c.title]));
    assert.equal(titles['fedex.runSimulation'], 'Run Local Simulation');
    assert.equal(titles['fedex.aggregateAdapters'], 'Aggregate Adapters…');
  });

  test('the activity-bar container holds the three views; icons exist', () => {
    assert.deepEqual(manifest.contributes.viewsContainers.activitybar.map((c) => c.id), ['fedex']);
    assert.deepEqual(manifest.contributes.views.fedex.map((v) => v.id), [...VIEW_IDS]);
    for (const v of VIEW_IDS) assert.ok(manifest.activationEvents.includes(`onView:${v}`), v);
    assert.ok(manifest.activationEvents.includes('onWebviewPanel:fedex.dashboard'));
    assert.ok(existsSync(`${root}${manifest.contributes.viewsContainers.activitybar[0].icon}`));
    assert.ok(existsSync(`${root}${manifest.icon}`));
    assert.ok(manifest.icon.endsWith('.png'), 'the marketplace icon must be a PNG');
  });

  test('setting defaults are the ones the extension falls back to', () => {
    const props = manifest.contributes.configuration.properties;
    const keys = Object.keys(DEFAULT_SETTINGS).map((k) => `fedex.${k}`).sort();
    assert.deepEqual(Object.keys(props).sort(), keys);
    for (const [k, v] of Object.entries(DEFAULT_SETTINGS)) assert.deepEqual(props[`fedex.${k}`].default, v, k);
  });

  test('item menus match the context values the tree produces', () => {
    const when = (command: string): string[] => manifest.contributes.menus['view/item/context'].filter((m) => m.command === command).map((m) => m.when ?? '');
    const regexOf = (w: string): RegExp | string => {
      const m = /viewItem =~ \/(.+?)\/(?:\s|$)/.exec(w);
      if (m) return new RegExp(m[1]);
      return /viewItem == (\S+)/.exec(w)?.[1] ?? '';
    };
    const matches = (command: string, ctx: string): boolean => when(command).some((w) => {
      const r = regexOf(w);
      return typeof r === 'string' ? r === ctx : r.test(ctx);
    });
    const ctx = (kind: 'host' | 'join' | 'simulation' | 'remote', live: boolean): string => federationContext(initialFederation({ id: 'x', kind, label: 'x', live }));
    assert.ok(matches('fedex.stopFederation', ctx('host', true)));
    assert.ok(matches('fedex.stopFederation', ctx('simulation', true)));
    assert.ok(!matches('fedex.stopFederation', ctx('host', false)));
    assert.ok(!matches('fedex.stopFederation', ctx('join', true)));
    assert.ok(matches('fedex.leaveFederation', ctx('join', true)));
    assert.ok(matches('fedex.joinFederation', ctx('remote', false)));
    assert.ok(matches('fedex.joinFederation', ctx('join', false)));
    assert.ok(matches('fedex.exportAdapter', ctx('simulation', false)));
    assert.ok(!matches('fedex.openDashboard', ctx('remote', false)));
    assert.ok(matches('fedex.openDashboard', ctx('join', true)));
  });
});
