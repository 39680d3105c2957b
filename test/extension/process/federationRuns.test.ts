import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { FederationBusyError, FederationRuns } from '../../../src/extension/process/federationRuns.js';
import type { Log } from '../../../src/extension/process/federationRuns.js';
import { currentRound } from '../../../src/extension/state/federationState.js';
import { FederationStore } from '../../../src/extension/state/federationStore.js';
import { statusText } from '../../../src/extension/state/treeModel.js';

const FAKE_CLI = fileURLToPath(new URL('../fixtures/fakeCli.cjs', import.meta.url));
const HOST_RUN = fileURLToPath(new URL('../fixtures/hostRun.jsonl', import.meta.url));

function memoryLog(): Log & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
}

describe('FederationRuns', () => {
  test('a finished run fills the store from the child stream and logs stderr with the label', async () => {
    // prepare
    const store = new FederationStore();
    const log = memoryLog();
    const runs = new FederationRuns(store, { nodePath: process.execPath, cliPath: FAKE_CLI }, log);
    // act
    const proc = runs.start({ id: 'host:1', kind: 'host', label: 'Hosted', args: ['chunks', HOST_RUN], totalRounds: 2 });
    await proc.exited;
    // assert
    const s = store.get('host:1');
    assert.equal(s?.live, false);
    assert.equal(s?.phase, 'done', 'exit code 0 with no final event ends as done');
    assert.equal(s === undefined ? undefined : currentRound(s), 2);
    assert.equal(store.events('host:1').length, 12);
    assert.equal(statusText(s), 'FedEx round 2/2 · done');
    assert.ok(log.lines.includes('info [Hosted] fake: start'));
    assert.ok(log.lines.some((l) => l.startsWith('info [Hosted] fedex chunks ')));
    assert.equal(runs.isRunning('host:1'), false);
  });

  test('stop() ends a live federation: state stopped, a second start with the same id refused while running', async () => {
    const store = new FederationStore();
    const runs = new FederationRuns(store, { nodePath: process.execPath, cliPath: FAKE_CLI, killGraceMs: 300 }, memoryLog());
    const firstEvent = new Promise<void>((resolve) => store.onDidChange((c) => c.events !== undefined && resolve()));
    runs.start({ id: 'h', kind: 'host', label: 'H', args: ['stubborn'] });
    await firstEvent;
    assert.equal(store.get('h')?.phase, 'waiting');
    assert.throws(() => runs.start({ id: 'h', kind: 'host', label: 'H', args: ['stubborn'] }), FederationBusyError);
    const exit = await runs.stop('h');
    assert.equal(exit?.signal, 'SIGKILL');
    assert.equal(store.get('h')?.phase, 'stopped');
    assert.equal(store.get('h')?.live, false);
    assert.equal(await runs.stop('h'), undefined);
  });

  test('send() reaches a manual-rounds host by federation id: ready, then a round per start; unknown ids get nothing', async () => {
    // prepare
    const store = new FederationStore();
    const log = memoryLog();
    const runs = new FederationRuns(store, { nodePath: process.execPath, cliPath: FAKE_CLI }, log);
    const ready = new Promise<void>((resolve) => store.onDidChange((c) => c.events?.some((e) => e.type === 'round_ready') === true && resolve()));
    const proc = runs.start({ id: 'm', kind: 'host', label: 'Manual', args: ['manual'], totalRounds: 3, manualRounds: true });
    await ready;
    const waiting = store.get('m');
    const started = new Promise<void>((resolve) => store.onDidChange((c) => c.events?.some((e) => e.type === 'round_started') === true && resolve()));
    // act
    const sent = runs.send('m', 'start');
    await started;
    // assert
    assert.equal(waiting?.manualRounds, true);
    assert.equal(waiting?.phase, 'ready');
    assert.equal(statusText(waiting), 'FedEx round 0/3 · ready — run FedEx: Start Round');
    assert.equal(sent, true);
    assert.equal(store.get('m')?.phase, 'training');
    assert.equal(currentRound(store.get('m')!), 1);
    assert.ok(log.lines.includes('info [Manual] > start'));
    assert.equal(runs.send('nope', 'start'), false);
    runs.send('m', 'quit');
    await proc.exited;
    assert.equal(runs.send('m', 'start'), false, 'nothing is sent once the process ended');
  });

  test('a failing CLI logs its error event and ends failed', async () => {
    const store = new FederationStore();
    const log = memoryLog();
    const runs = new FederationRuns(store, { nodePath: process.execPath, cliPath: FAKE_CLI }, log);
    await runs.start({ id: 's', kind: 'simulation', label: 'Sim', args: ['fail'] }).exited;
    assert.equal(store.get('s')?.phase, 'failed');
    assert.equal(store.get('s')?.lastError, 'model folder not found: /nope');
    assert.ok(log.lines.includes('error [Sim] model folder not found: /nope'));
    assert.ok(log.lines.includes('error [Sim] exited with code 3'));
  });
});

describe('FederationRuns failure reasons', () => {
  test('a CLI that fails with only a stderr message (a usage error) ends failed with that message', async () => {
    const store = new FederationStore();
    const runs = new FederationRuns(store, { nodePath: process.execPath, cliPath: FAKE_CLI }, memoryLog());
    await runs.start({ id: 'u', kind: 'simulation', label: 'U', args: ['no-such-mode'] }).exited;
    assert.equal(store.get('u')?.phase, 'failed');
    assert.equal(store.get('u')?.lastError, 'fakeCli: unknown mode no-such-mode (exit code 2)');
  });
});
