// `fedex host --manual-rounds` as people run it: the host in a child process reading the operator's
// lines from its stdin, clients as `fedex join` processes, the model-free synthetic base. A `start`
// before the clients joined is kept for round 1; round 2 waits for Enter; the host exits when the
// federation is done although its stdin is still open; an ended stdin breaks nothing and a waiting
// host still stops on Ctrl+C.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseEventLine } from '../../src/federation/events/events.js';
import { suiteFedex, waitForOutput, type FedexRun } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';

async function eventTypes(file: string): Promise<{ type: string; round?: number }[]> {
  return (await readFile(file, 'utf8')).trim().split('\n').map((l) => parseEventLine(l) as { type: string; round?: number });
}

describe('fedex host --manual-rounds', { timeout: 90_000 }, () => {
  const start = suiteFedex();
  const fedex = (...args: string[]): FedexRun => start(args, { stdin: 'pipe' });
  const tmp = suiteTempDir('cli-manual');

  const host = (out: string, rounds: number, minClients: number, events: string): FedexRun =>
    fedex('host', '--model', 'synthetic', '--port', '0', '--rounds', String(rounds), '--min-clients', String(minClients), '--local-steps', '2', '--token', 'manual-token', '--out', out, '--events', events, '--manual-rounds');
  const client = (url: string, i: number): FedexRun => fedex('join', url, '--token', 'manual-token', '--model', 'synthetic', '--name', `client ${i}`, '--client-id', `c${i}`);

  test('start before the clients runs round 1 once they joined; round 2 waits for Enter; the host exits with stdin open', async () => {
    // prepare
    const events = join(tmp.path, 'events.jsonl');
    const h = host(join(tmp.path, 'run'), 2, 2, events);
    const url = (await waitForOutput(h, /listening on (ws:\/\/\S+)/))[1];
    await waitForOutput(h, /manual rounds: once they have joined, press Enter/);

    // act: ask before anyone joined, then an unknown line
    h.child.stdin!.write('start\nfoo\n');
    await waitForOutput(h, /unknown command 'foo'/);
    const clients = [1, 2].map((i) => client(url, i));
    await waitForOutput(h, /round 2\/2 ready: press Enter \(or type start\) to run it/);
    await new Promise((r) => setTimeout(r, 500));
    const beforeEnter = h.output();
    h.child.stdin!.write('\n');
    const [result, ...joins] = await Promise.all([h.done, ...clients.map((c) => c.done)]);

    // assert
    assert.match(result.stdout, /waiting for clients \(0 of 2 joined\): round 1 starts when 2 clients have joined/);
    assert.doesNotMatch(beforeEnter, /round 2\/2: \d clients sampled/, 'round 2 did not start before Enter');
    assert.match(result.stdout, /starting round 2/);
    assert.equal(result.code, 0, result.stderr);
    for (const j of joins) assert.equal(j.code, 0, j.stderr);
    const log = await eventTypes(events);
    assert.deepEqual(log.filter((e) => e.type === 'round_ready').map((e) => e.round), [2], 'only round 2 waited for the operator');
    assert.deepEqual(log.filter((e) => e.type === 'round_started').map((e) => e.round), [1, 2]);
    assert.equal(log.filter((e) => e.type === 'federation_done').length, 1);
  });

  test('an ended stdin breaks nothing: the round waits and Ctrl+C stops the host cleanly', async () => {
    // prepare
    const events = join(tmp.path, 'events-2.jsonl');
    const h = host(join(tmp.path, 'run-2'), 1, 1, events);
    const url = (await waitForOutput(h, /listening on (ws:\/\/\S+)/))[1];

    // act
    h.child.stdin!.end();
    await waitForOutput(h, /standard input closed: rounds can no longer be started from here/);
    client(url, 1);
    await waitForOutput(h, /round 1\/1 ready/);
    h.child.kill('SIGINT');
    const result = await h.done;

    // assert
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stdout, /interrupted: stopping/);
    const log = await eventTypes(events);
    assert.deepEqual(log.filter((e) => e.type === 'round_ready').map((e) => e.round), [1]);
    assert.equal(log.filter((e) => e.type === 'round_started').length, 0, 'no round without a grant');
  });
});
