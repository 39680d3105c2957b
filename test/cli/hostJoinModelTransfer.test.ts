// `fedex join` without --model, as people run it: `fedex host` (shipped models/tiny-gpt2) and the
// clients as separate processes. A client without the model fetches it into --model-cache, verifies
// it and completes a FedEx round with a client that has its own copy; a later join finds it in the
// cache and sends no model_request; with `fedex host --no-model-transfer` a client without the model
// stops with a message telling it to pass --model.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { modelManifest, type ModelManifest } from '../../src/federation/shared/modelBase.js';
import { parseEventLine, type CliEvent, type CliEventOf } from '../../src/federation/events/events.js';
import { suiteFedex, waitForHostUrl, type FedexRun } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

async function events(file: string): Promise<CliEvent[]> {
  return (await readFile(file, 'utf8')).trim().split('\n').map((l) => parseEventLine(l) as CliEvent);
}

describe('fedex join without --model fetches the base model from fedex host', { timeout: 120_000 }, () => {
  const start = suiteFedex();
  const fedex = (...args: string[]): FedexRun => start(args);
  const tmp = suiteTempDir('cli-model-transfer');
  let shipped: ModelManifest;
  let cache: string;
  before(async () => {
    shipped = await modelManifest(join(ROOT, 'models', 'tiny-gpt2'));
    cache = join(tmp.path, 'cache');
  });

  const host = (name: string, ...extra: string[]): FedexRun =>
    fedex('host', '--port', '0', '--rounds', '1', '--local-steps', '2', '--batch-size', '4', '--rank', '4', '--alpha', '8', '--token', 'tok', '--out', join(tmp.path, name), '--events', join(tmp.path, `${name}.jsonl`), ...extra);
  const client = (url: string, id: string, ...extra: string[]): FedexRun =>
    fedex('join', url, '--token', 'tok', '--data', 'task:arith?count=80', '--seq-len', '32', '--threads', '1', '--client-id', id, '--name', id, '--events', join(tmp.path, `${id}.jsonl`), ...extra);

  test('a client without the model fetches it, verifies it and completes a FedEx round beside a client with its own copy', async () => {
    const h = host('run1', '--min-clients', '2', '--quorum', '2');
    const url = await waitForHostUrl(h);
    assert.match(h.output(), /base model offered to clients that lack it: 4 files/);
    const [hr, own, fetched] = await Promise.all([h.done, client(url, 'own', '--model', 'models/tiny-gpt2').done, client(url, 'fetcher', '--model-cache', cache).done]);
    assert.equal(own.code, 0, own.stderr);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(hr.code, 0, hr.stderr);
    assert.match(fetched.stdout, new RegExp(`base model ${shipped.hash.slice(0, 12)}… fetched \\(1\\.5 MiB in \\d+ requests\\), SHA-256 verified, cached in ${cache}/${shipped.hash}`));
    assert.match(fetched.stdout, /round 1: uploaded/);
    assert.deepEqual(await readdir(cache), [shipped.hash], 'the cache holds the model under its hash, nothing else');
    for (const f of shipped.files) assert.deepEqual(await readFile(join(cache, shipped.hash, f.name)), await readFile(join(shipped.dir, f.name)));

    const hostEvents = await events(join(tmp.path, 'run1.jsonl'));
    const transfers = hostEvents.filter((e) => e.type === 'model_transfer') as CliEventOf<'model_transfer'>[];
    assert.deepEqual(transfers.map((t) => [t.clientId, t.status]), [['fetcher', 'started'], ['fetcher', 'finished']]);
    assert.equal(transfers[1].bytesServed, shipped.files.reduce((n, f) => n + f.bytes, 0));
    const closed = hostEvents.find((e) => e.type === 'round_closed') as CliEventOf<'round_closed'>;
    assert.deepEqual([...closed.participants].sort(), ['fetcher', 'own']);
    const statuses = (await events(join(tmp.path, 'fetcher.jsonl'))).filter((e) => e.type === 'join_model').map((e) => (e as CliEventOf<'join_model'>).status);
    assert.deepEqual([statuses[0], statuses.at(-1)], ['offered', 'verified']);
  });

  test('the next join finds the model in the cache and sends no model_request; --no-model-transfer makes a client without the model stop, telling it to pass --model', async () => {
    const reuse = host('run2', '--min-clients', '1');
    const refuse = host('run3', '--min-clients', '1', '--no-model-transfer');
    const [url2, url3] = await Promise.all([waitForHostUrl(reuse), waitForHostUrl(refuse)]);
    assert.match(refuse.output(), /--model <their copy of the model folder>/);
    const otherCache = join(tmp.path, 'cache-unused');
    const [again, refused] = await Promise.all([client(url2, 'again', '--model-cache', cache).done, client(url3, 'refused', '--model-cache', otherCache).done]);
    refuse.child.kill('SIGINT');
    const hr = await reuse.done;
    await refuse.done;

    assert.equal(again.code, 0, again.stderr);
    assert.equal(hr.code, 0, hr.stderr);
    assert.match(again.stdout, /found in the cache, verified/);
    assert.ok(!(await events(join(tmp.path, 'run2.jsonl'))).some((e) => e.type === 'model_transfer'), 'the host served no byte');
    assert.deepEqual((await events(join(tmp.path, 'again.jsonl'))).filter((e) => e.type === 'join_model').map((e) => (e as CliEventOf<'join_model'>).status), ['cached']);

    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /\(E_BASE_MISMATCH\).*the client has no base model, and this coordinator does not transfer models\. Pass --model with your copy of the coordinator's model folder/);
    assert.ok(!existsSync(join(otherCache, shipped.hash)), 'nothing cached');
  });
});
