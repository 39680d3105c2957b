/**
 * The integration suite that runs inside a real VS Code (see runTest.mjs): activation, the
 * contributed commands and views, the dashboard panel, and one tiny local simulation that fills the
 * sidebar. No mocha: a small sequential runner that fails with every failure listed.
 */
import * as vscode from 'vscode';
import assert from 'node:assert/strict';
import type { FedexApi } from '../../src/extension/extension.js';
import { COMMAND_IDS, VIEW_IDS } from '../../src/extension/commandIds.js';
import type { FederationState } from '../../src/extension/state/federationState.js';
import { clientNodes, federationNodes, roundNodes, statusText } from '../../src/extension/state/treeModel.js';

const EXTENSION_ID = 'fedex.fedex-lora';
const tests: { name: string; fn: () => Promise<void> }[] = [];
const test = (name: string, fn: () => Promise<void>): void => void tests.push({ name, fn });

async function api(): Promise<FedexApi> {
  const ext = vscode.extensions.getExtension<FedexApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not installed`);
  return ext.isActive ? ext.exports : ext.activate();
}

function dashboardTabs(): vscode.Tab[] {
  return vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith('fedex.dashboard'));
}

test('activates and registers every contributed command', async () => {
  const { commands } = await api();
  assert.deepEqual([...commands].sort(), [...COMMAND_IDS].sort());
  const registered = new Set(await vscode.commands.getCommands(true));
  for (const id of COMMAND_IDS) assert.ok(registered.has(id), `${id} is not registered`);
});

test('the FedEx container and its three views open', async () => {
  await vscode.commands.executeCommand('workbench.view.extension.fedex');
  for (const id of VIEW_IDS) await vscode.commands.executeCommand(`${id}.focus`);
});

test('Open Dashboard opens one webview panel, a second call reveals it', async () => {
  await vscode.commands.executeCommand('fedex.openDashboard');
  await vscode.commands.executeCommand('fedex.openDashboard');
  assert.equal(dashboardTabs().length, 1);
  await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
});

test('Run Local Simulation runs a one-round synthetic federation and fills the views', async () => {
  const config = vscode.workspace.getConfiguration('fedex');
  await config.update('model', 'synthetic', vscode.ConfigurationTarget.Global);
  await config.update('localSteps', 2, vscode.ConfigurationTarget.Global);
  try {
    const final = await vscode.commands.executeCommand<FederationState | undefined>('fedex.runSimulation', { methods: ['fedex', 'fedit'], clients: 2, rounds: 1 });
    assert.ok(final, 'no federation state returned');
    assert.equal(final.phase, 'done', `simulation ended ${final.phase}: ${final.lastError ?? ''}`);
    const { services } = await api();
    const states = services.store.list();
    assert.ok(federationNodes(states).some((n) => n.federationId === final.id));
    assert.ok(roundNodes(states).some((n) => n.federationId === final.id && (n.children?.length ?? 0) === 2));
    assert.ok(clientNodes(states).length > 0);
    assert.match(statusText(services.store.get(final.id)), /^FedEx round 1\/1 · done/);
    assert.ok(services.store.events(final.id).some((e) => e.type === 'round_closed'));
  } finally {
    await config.update('model', undefined, vscode.ConfigurationTarget.Global);
    await config.update('localSteps', undefined, vscode.ConfigurationTarget.Global);
  }
});

test('Stop and Leave with nothing running do not throw', async () => {
  await vscode.commands.executeCommand('fedex.stopFederation');
  await vscode.commands.executeCommand('fedex.leaveFederation');
});

/** Entry point called by the VS Code test host. */
export async function run(): Promise<void> {
  const failures: string[] = [];
  for (const t of tests) {
    const t0 = Date.now();
    try {
      await t.fn();
      console.log(`  ✓ ${t.name} (${Date.now() - t0} ms)`);
    } catch (err) {
      failures.push(`${t.name}: ${(err as Error).message}`);
      console.log(`  ✗ ${t.name}\n    ${(err as Error).stack ?? String(err)}`);
    }
  }
  console.log(`${tests.length - failures.length}/${tests.length} passed`);
  if (failures.length > 0) throw new Error(`${failures.length} test(s) failed:\n${failures.join('\n')}`);
}
