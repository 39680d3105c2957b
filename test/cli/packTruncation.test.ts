// Records longer than --seq-len in a federation are reported, never cut silently (issue: about half
// the tokens of 1–1.7k-token records were dropped with no message), and --pack packs them instead,
// as users run it: `fedex simulate` on the shipped model, and `fedex host` + `fedex join` processes.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { cli } from '../helpers/cliRun.js';
import { suiteFedex, waitForHostUrl } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';

describe('--seq-len truncation in federations: reported, or --pack', { timeout: 180_000 }, () => {
  const start = suiteFedex();
  const tmp = suiteTempDir('cli-pack');
  let data: string;
  before(async () => {
    data = join(tmp.path, 'long.jsonl');
    // 24 records of ~60–110 words: far over a 16-token window.
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
    const lines = Array.from({ length: 24 }, (_, i) => JSON.stringify({ text: Array.from({ length: 60 + 2 * i }, (_, j) => words[(i + j) % words.length]).join(' ') }));
    await writeFile(data, `${lines.join('\n')}\n`);
  });

  test('fedex simulate names what --seq-len cut for each client; with --pack no training record is cut; text without groups is split IID with a note', async () => {
    const base = ['simulate', '--seeds', '1', '--data', data, '--clients', '2', '--rounds', '1', '--local-steps', '1', '--methods', 'fedex', '--seq-len', '16', '--eval-examples', '4'];
    const cut = await cli(...base, '--out', join(tmp.path, 'sim-cut'));
    assert.equal(cut.code, 0, cut.stderr);
    assert.match(cut.stdout, /warning: client 1\/2: --seq-len 16 cut \d+ of \d+ training records \(\d+ of \d+ tokens dropped, [\d.]+ %\).*raise --seq-len, or --pack text data/);
    assert.match(cut.stdout, /warning: client 2\/2: --seq-len 16 cut/);
    assert.match(cut.stdout, /note: .*record 1 has no "group".*IID share \(--split iid\)/, 'plain text has no groups: the default split is IID, and the note says why');
    const packed = await cli(...base, '--pack', '--out', join(tmp.path, 'sim-pack'));
    assert.equal(packed.code, 0, packed.stderr);
    assert.doesNotMatch(packed.stdout, /cut \d+ of \d+ training records/, 'packed training records are not cut');
    const nonIid = await cli(...base, '--split', 'non-iid', '--out', join(tmp.path, 'sim-noniid'));
    assert.equal(nonIid.code, 2, 'an explicit non-IID split of data without groups is a usage error, before any training');
    assert.match(nonIid.stdout + nonIid.stderr, /non-IID split \(--split non-iid\) groups records by their "group".*record 1 has neither: use --split iid/);
  });

  test('fedex join warns what --seq-len cut and emits join_data; the host federation completes', async () => {
    const host = start(['host', '--port', '0', '--rounds', '1', '--min-clients', '1', '--local-steps', '1', '--token', 'pack-token', '--out', join(tmp.path, 'run')]);
    const url = await waitForHostUrl(host, 60_000);
    const events = join(tmp.path, 'join.jsonl');
    const joined = start(['join', url, '--data', data, '--seq-len', '16', '--model-cache', join(tmp.path, 'cache'), '--events', events], { env: { FEDEX_TOKEN: 'pack-token' } });
    const [h, j] = await Promise.all([host.done, joined.done]);
    assert.equal(h.code, 0, h.stderr);
    assert.equal(j.code, 0, j.stderr);
    assert.match(j.stderr, /warning: --seq-len 16 cut \d+ of 22 training records \(\d+ of \d+ tokens dropped/, '22 of the 24 records train; 2 are held out for eval');
    const lines = (await readFile(events, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; seqLen?: number; packed?: boolean; train?: { truncated: number } });
    const report = lines.find((e) => e.type === 'join_data');
    assert.ok(report !== undefined, 'a join_data event');
    assert.equal(report.seqLen, 16);
    assert.equal(report.packed, false);
    assert.ok((report.train?.truncated ?? 0) > 0);
  });
});
