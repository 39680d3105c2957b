// `fedex host` and `fedex join` as separate processes (node --import tsx src/cli/bin.ts …), as
// people run them: a coordinator on an ephemeral port and two clients with the real trainer on
// their shares of task:arith complete a FedEx round; the host's event file parses; a wrong token,
// an unreachable host and a different base model fail with clear messages.
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseEventLine, type CliEventOf } from '../../src/federation/events/events.js';
import { suiteFedex, waitForHostUrl, waitForOutput, type FedexRun } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { suiteTinyGpt2 } from '../helpers/cliTinyGpt2.js';

describe('fedex host + fedex join as separate processes', { timeout: 120_000 }, () => {
  const start = suiteFedex();
  const fedex = (...args: string[]): FedexRun => start(args);
  const tmp = suiteTempDir('cli-host');
  const model = suiteTinyGpt2(tmp);

  test('a coordinator and two clients complete a FedEx round; the host writes events, the final adapter and base', async () => {
    const runDir = join(tmp.path, 'run');
    const eventsFile = join(tmp.path, 'host-events.jsonl');
    const host = fedex('host', '--model', model.path, '--port', '0', '--rounds', '1', '--local-steps', '2', '--batch-size', '4', '--rank', '4', '--alpha', '8', '--min-clients', '2', '--quorum', '2', '--token', 'secret-token', '--out',
      runDir, '--events', eventsFile);
    const url = await waitForHostUrl(host);
    await waitForOutput(host, /join token: secret-token/);
    const joins = [1, 2].map((i) =>
      fedex('join', url, '--token', 'secret-token', '--model', model.path, '--data', 'task:arith?count=120', '--shard', `${i}/2`, '--seq-len', '48', '--threads', '1', '--name', `client ${i}`, '--client-id', `c${i}`, '--events',
        join(tmp.path, `join-${i}.jsonl`), ...(i === 1 ? ['--out', join(tmp.path, 'final-1')] : []))
    );
    const [h, j1, j2] = await Promise.all([host.done, ...joins.map((j) => j.done)]);
    assert.equal(j1.code, 0, j1.stderr);
    assert.equal(j2.code, 0, j2.stderr);
    assert.equal(h.code, 0, h.stderr);
    assert.match(j1.stdout, /round 1: uploaded/);
    assert.match(j1.stderr, /warning: --token puts the join token in the process list/, '--token still works, with a warning');
    assert.match(h.stdout, /round 1 closed \(all_reported\): 2 updates aggregated/);

    const events = (await readFile(eventsFile, 'utf8')).trim().split('\n').map((l) => parseEventLine(l)!);
    const closed = events.filter((e) => e.type === 'round_closed') as CliEventOf<'round_closed'>[];
    assert.equal(closed.length, 1);
    assert.deepEqual([...closed[0].participants].sort(), ['c1', 'c2']);
    assert.ok(closed[0].modules.every((m) => m.relativeDeviation !== null && m.relativeDeviation > 0));
    assert.equal(events.filter((e) => e.type === 'client_joined').length, 2);
    assert.ok((await readdir(join(runDir, 'final', 'adapter'))).includes('adapter_model.safetensors'));
    assert.ok((await readdir(join(runDir, 'final', 'model'))).includes('model.safetensors'), 'FedEx changed the base: it is written');
    assert.ok((await readdir(join(tmp.path, 'final-1'))).includes('adapter_config.json'), 'join --out wrote the final adapter');
    const joinEvents = (await readFile(join(tmp.path, 'join-1.jsonl'), 'utf8')).trim().split('\n').map((l) => parseEventLine(l)!.type);
    for (const t of ['join_connected', 'join_welcomed', 'join_round_started', 'client_progress', 'client_round_done', 'join_uploaded', 'join_round_closed', 'join_done']) {
      assert.ok(joinEvents.includes(t), `join events include ${t}`);
    }
  });

  test('clear failures: wrong token, different base model, unreachable host', async () => {
    const host = fedex('host', '--model', 'synthetic', '--port', '0', '--rounds', '1', '--min-clients', '1', '--token', 'right', '--out', join(tmp.path, 'run2'));
    const url = await waitForHostUrl(host);
    const [wrongToken, wrongBase, unreachable] = await Promise.all([
      fedex('join', url, '--token', 'wrong', '--model', 'synthetic').done,
      fedex('join', url, '--token', 'right', '--model', 'synthetic', '--seed', '9').done,
      fedex('join', 'ws://127.0.0.1:9/', '--token', 'x', '--model', 'synthetic', '--retries', '1').done,
    ]);
    host.child.kill('SIGINT');
    await host.done;
    assert.equal(wrongToken.code, 1);
    assert.match(wrongToken.stderr, /refused the token \(E_AUTH\)/);
    assert.equal(wrongBase.code, 1);
    assert.match(wrongBase.stderr, /base model does not match the federation's \(E_BASE_MISMATCH\)/);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach ws:\/\/127\.0\.0\.1:9\/ after 1 attempt/);
  });
});
