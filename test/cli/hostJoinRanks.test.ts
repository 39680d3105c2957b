// Heterogeneous client ranks with the real processes: `fedex host --ranks 2 --rank 4` and two
// `fedex join` clients, one at --rank 2 and one at the global rank 4, complete 2 FedEx rounds with the
// real trainer; from the host's --save-adapters folders every round's global model is the exact mean
// of the client models, each on its own base (docs/math.md §1.4). A client asking for a rank the
// host does not allow is refused with E_RANK and a clear message.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { suiteFedex, waitForHostUrl, waitForOutput, type FedexRun } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { suiteTinyGpt2 } from '../helpers/cliTinyGpt2.js';
import { checkSavedRoundWithRanks } from '../federation/simulation/savedRanks.js';

describe('fedex host --ranks + fedex join --rank as separate processes', { timeout: 180_000 }, () => {
  const start = suiteFedex();
  const fedex = (...args: string[]): FedexRun => start(args);
  const tmp = suiteTempDir('cli-ranks');
  const model = suiteTinyGpt2(tmp);

  test('clients at ranks 2 and 4 complete 2 exact FedEx rounds; rank 3 is refused (E_RANK)', async () => {
    const runDir = join(tmp.path, 'run');
    const host = fedex('host', '--model', model.path, '--port', '0', '--rounds', '2', '--local-steps', '3', '--batch-size', '4', '--rank', '4', '--ranks', '2', '--alpha', '8', '--lr', '0.02', '--min-clients', '2', '--quorum', '2',
      '--token', 'rank-token', '--out', runDir, '--save-adapters');
    const url = await waitForHostUrl(host);
    await waitForOutput(host, /clients may also train at rank 2/);
    const refused = await fedex('join', url, '--token', 'rank-token', '--model', model.path, '--data', 'task:arith?count=60', '--rank', '3', '--client-id', 'c3').done;
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /does not let this client train at that rank \(E_RANK\): .*trains at rank 4 and lets clients train at 2; the client asked for rank 3/);
    const joins = [1, 2].map((i) =>
      fedex('join', url, '--token', 'rank-token', '--model', model.path, '--data', 'task:arith?count=120', '--shard', `${i}/2`, '--seq-len', '48', '--threads', '1', '--name', `client ${i}`, '--client-id', `c${i}`,
        ...(i === 1 ? ['--rank', '2'] : []))
    );
    const [h, j1, j2] = await Promise.all([host.done, ...joins.map((j) => j.done)]);
    assert.equal(j1.code, 0, j1.stderr);
    assert.equal(j2.code, 0, j2.stderr);
    assert.equal(h.code, 0, h.stderr);
    assert.match(j1.stdout, /training at rank 2 \(global rank 4\)/);
    assert.doesNotMatch(j2.stdout, /training at rank/);
    assert.match(h.stdout, /round 2 closed \(all_reported\): 2 updates aggregated/);

    const adapters = join(runDir, 'adapters');
    const names = JSON.parse(await readFile(join(adapters, 'clients.json'), 'utf8')) as Record<string, string>;
    assert.deepEqual(Object.values(names).sort(), ['c1', 'c2']);
    const layout = JSON.parse(await readFile(join(runDir, 'state.json'), 'utf8')).plan.layout as { module: string; in: number; out: number; rank: number; fanInFanOut: boolean }[];
    for (let round = 1; round <= 2; round++) {
      for (const c of await checkSavedRoundWithRanks(adapters, round, layout)) {
        assert.deepEqual([...c.ranks].sort(), [2, 4], `round ${round} ${c.module}: the saved client adapters have ranks 2 and 4`);
        assert.ok(c.size > 1e-5, `round ${round} ${c.module}: training changed the model (${c.size})`);
        assert.ok(c.err <= 1e-5 * c.size + 5e-8, `round ${round} ${c.module}: error ${c.err} vs update ${c.size}`);
      }
    }
  });
});
