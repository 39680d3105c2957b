import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeCommand, startCliProcess } from '../../../src/extension/process/cliProcess.js';
import type { CliProcessHandlers } from '../../../src/extension/process/cliProcess.js';
import type { StreamEvent } from '../../../src/extension/process/jsonlLines.js';

const FAKE_CLI = fileURLToPath(new URL('../fixtures/fakeCli.cjs', import.meta.url));

function recorder(): CliProcessHandlers & { events: StreamEvent[]; malformed: string[]; stderr: string[]; firstEvent: Promise<void> } {
  let resolveFirst: () => void = () => undefined;
  const firstEvent = new Promise<void>((r) => (resolveFirst = r));
  const rec = {
    events: [] as StreamEvent[],
    malformed: [] as string[],
    stderr: [] as string[],
    firstEvent,
    onEvent: (e: StreamEvent) => {
      rec.events.push(e);
      resolveFirst();
    },
    onMalformed: (line: string) => rec.malformed.push(line),
    onStderr: (line: string) => rec.stderr.push(line),
  };
  return rec;
}

describe('startCliProcess', () => {
  test('reads the JSONL stream written in odd-sized chunks, flags malformed lines, collects stderr lines', async () => {
    // prepare
    const dir = mkdtempSync(join(tmpdir(), 'fedex-ext-'));
    const stream = join(dir, 'events.jsonl');
    const lines = [
      { type: 'listening', time: 1, url: 'ws://127.0.0.1:9', runDir: dir, resumedFromRound: null },
      { type: 'client_joined', time: 2, clientId: 'c1', name: 'Ünïcode client', sessionId: 's', resumed: false, clients: 1 },
      { type: 'round_started', time: 3, round: 1, sampled: ['c1'], quorum: 1, deadline: 10, baseRevision: 0 },
    ];
    writeFileSync(stream, `${JSON.stringify(lines[0])}\n{broken\n${JSON.stringify(lines[1])}\r\n${JSON.stringify(lines[2])}`);
    const rec = recorder();
    // act
    const proc = startCliProcess({ nodePath: process.execPath, cliPath: FAKE_CLI, args: ['chunks', stream] }, rec);
    const exit = await proc.exited;
    // assert
    assert.deepEqual(exit, { code: 0, signal: null, stopped: false });
    assert.deepEqual(rec.events, lines);
    assert.deepEqual(rec.malformed, ['{broken']);
    assert.deepEqual(rec.stderr, ['fake: start', 'partial stderr line', 'fake: all written']);
    assert.equal(proc.running, false);
  });

  test('stop() sends SIGTERM and a well-behaved CLI finishes its stream before exiting', async () => {
    const rec = recorder();
    const proc = startCliProcess({ nodePath: process.execPath, cliPath: FAKE_CLI, args: ['graceful'], killGraceMs: 5000 }, rec);
    await rec.firstEvent;
    const exit = await proc.stop();
    assert.equal(exit.stopped, true);
    assert.equal(exit.code, 0);
    assert.deepEqual(rec.events.map((e) => e.type), ['listening', 'federation_done']);
  });

  test('a child that ignores SIGTERM is killed with SIGKILL after the grace period', async () => {
    const rec = recorder();
    const proc = startCliProcess({ nodePath: process.execPath, cliPath: FAKE_CLI, args: ['stubborn'], killGraceMs: 300 }, rec);
    await rec.firstEvent;
    const t0 = Date.now();
    const exit = await proc.stop();
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(exit.stopped, true);
    assert.ok(Date.now() - t0 >= 250, 'SIGKILL came before the grace period');
    assert.ok(rec.stderr.includes('fake: ignoring SIGTERM'));
  });

  test('an AbortSignal cancels the run', async () => {
    const rec = recorder();
    const controller = new AbortController();
    const proc = startCliProcess({ nodePath: process.execPath, cliPath: FAKE_CLI, args: ['graceful'], signal: controller.signal }, rec);
    await rec.firstEvent;
    controller.abort();
    const exit = await proc.exited;
    assert.equal(exit.stopped, true);
    assert.equal(proc.running, false);
  });

  test('a failing CLI reports its exit code; a missing binary reports the spawn error', async () => {
    const rec = recorder();
    const failed = await startCliProcess({ nodePath: process.execPath, cliPath: FAKE_CLI, args: ['fail'] }, rec).exited;
    assert.equal(failed.code, 3);
    assert.equal(rec.events[0].type, 'error');
    const missing = await startCliProcess({ nodePath: '/nonexistent/node', cliPath: FAKE_CLI, args: [] }, recorder()).exited;
    assert.equal(missing.code, null);
    assert.match(missing.error ?? '', /ENOENT/);
  });

  test('raw stdout mode hands text over unparsed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedex-ext-'));
    const file = join(dir, 'report.json');
    writeFileSync(file, '{\n  "method": "fedex"\n}\n');
    let text = '';
    const rec = recorder();
    const exit = await startCliProcess({ nodePath: process.execPath, cliPath: FAKE_CLI, args: ['chunks', file], stdout: 'raw' }, { ...rec, onStdout: (t) => (text += t) }).exited;
    assert.equal(exit.code, 0);
    assert.deepEqual(JSON.parse(text), { method: 'fedex' });
    assert.equal(rec.malformed.length, 0);
  });

  test("send() writes lines to the child's stdin; after the exit it writes nothing and says so", async () => {
    // prepare: a fake manual-rounds host that starts a round per `start` line
    const rec = recorder();
    const proc = startCliProcess({ nodePath: process.execPath, cliPath: FAKE_CLI, args: ['manual'] }, rec);
    await rec.firstEvent;
    // act
    const sent = [proc.send('start'), proc.send('hello'), proc.send('start'), proc.send('quit')];
    const exit = await proc.exited;
    // assert
    assert.deepEqual(sent, [true, true, true, true]);
    assert.equal(exit.code, 0);
    assert.deepEqual(rec.events.map((e) => ('round' in e && e.type === 'round_started' ? `round_started ${String(e.round)}` : e.type)), ['round_ready', 'round_started 1', 'warning', 'round_started 2', 'federation_done']);
    assert.equal(proc.send('start'), false, 'nothing to write to after the exit');
    assert.throws(() => proc.send('start\nstart'), /one line without line breaks/);
  });

  test('describeCommand hides the token and quotes spaces', () => {
    assert.equal(describeCommand(['join', 'ws://h:1', '--token', 's3cret', '--data', 'my data.jsonl']), 'join ws://h:1 --token *** --data "my data.jsonl"');
  });
});
