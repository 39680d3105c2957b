// `fedex export --as adapter` writes one exact adapter whose modules keep their own ranks
// (rank_pattern, alpha_pattern with alpha = rank); `fedex eval --adapter` and `fedex train --adapter`
// must take it as it is. A one-round FedEx federation (3 clients, r 4) on a 3-layer Llama whose v_proj
// is 16 → 8: the exact update has rank (3 − 1)·4 + 4 = 12 in q_proj but at most 8 in v_proj, so the
// export has per-module ranks. Real `fedex` processes throughout.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { withSafetensors } from '../../src/formats/safetensors.js';
import { spawnFedex } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { writeTinyLlamaFolder } from '../trainer/peftPatterns.js';

const DATA = 'task:arith?count=48';
const EVAL = ['--data', 'task:arith', '--max-examples', '32', '--seq-len', '32', '--no-exact-match', '--threads', '1', '--json'];

async function fedex(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return spawnFedex(args).done;
}

async function evalLoss(...args: string[]): Promise<number> {
  const r = await fedex('eval', ...args, ...EVAL);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { loss: number }).loss;
}

describe('fedex export --as adapter with per-module ranks → fedex eval / train --adapter', { timeout: 300_000 }, () => {
  const tmp = suiteTempDir('export-patterns');
  let model: string;
  let exported: string;
  let federatedLoss: number;
  before(async () => {
    model = join(tmp.path, 'llama');
    await writeTinyLlamaFolder(model);
    const sim = join(tmp.path, 'sim');
    const run = await fedex('simulate', '--seeds', '1', '--model', model, '--methods', 'fedex', '--clients', '3', '--rounds', '1', '--local-steps', '3', '--rank', '4', '--alpha', '8', '--lr', '0.05', '--target-modules', 'q_proj,v_proj',
      '--data', DATA, '--split', 'iid', '--seq-len', '32', '--eval-examples', '16', '--threads', '1', '--out', sim, '--save-adapters');
    assert.equal(run.code, 0, run.stderr);
    const last = join(sim, 'adapters', 'fedex', 'round-001');
    federatedLoss = await evalLoss('--model', join(last, 'base'), '--adapter', join(last, 'global'));
    exported = join(tmp.path, 'export');
    const r = await fedex('export', sim, '--out', exported, '--as', 'adapter');
    assert.equal(r.code, 0, r.stderr);
  });

  test("the exported adapter has per-module ranks (rank_pattern, alpha_pattern) and on the original base gives the federated model's eval loss", async () => {
    const adapter = join(exported, 'adapter');
    const config = JSON.parse(await readFile(join(adapter, 'adapter_config.json'), 'utf8')) as { r: number; rank_pattern: Record<string, number>; alpha_pattern: Record<string, number> };
    const ranks = await withSafetensors(join(adapter, 'adapter_model.safetensors'),
      async (st) => new Map([...st.tensors.keys()].filter((k) => k.endsWith('lora_A.weight')).map((k) => [k.slice('base_model.model.'.length, -'.lora_A.weight'.length), st.info(k).shape[0]])));

    const loss = await evalLoss('--model', model, '--adapter', adapter);

    assert.ok(Object.keys(config.rank_pattern).length > 0, `rank_pattern ${JSON.stringify(config.rank_pattern)}`);
    assert.ok(Object.keys(config.alpha_pattern).length > 0, `alpha_pattern ${JSON.stringify(config.alpha_pattern)}`);
    for (const [path, rank] of ranks) assert.ok(path.endsWith('v_proj') ? rank <= 8 : rank === 12, `${path}: rank ${rank}`);
    // As test/cli/export.test.ts: the exported update on the original base matches the federated model to float32 round-off.
    assert.ok(Math.abs(loss - federatedLoss) <= 1e-5, `exported adapter ${loss} vs federated model ${federatedLoss}`);
    const globalOnly = await evalLoss('--model', model, '--adapter', join(tmp.path, 'sim', 'adapters', 'fedex', 'round-001', 'global'));
    assert.ok(Math.abs(globalOnly - federatedLoss) > 1e-5, `the global adapter alone (${globalOnly}) should miss the folded residual`);
  });

  test('fedex train --adapter continues from the export and writes the same rank_pattern / alpha_pattern back', async () => {
    const out = join(tmp.path, 'continued');

    const r = await fedex('train', '--model', model, '--adapter', join(exported, 'adapter'), '--data', DATA, '--steps', '1', '--seq-len', '32', '--eval-examples', '0', '--threads', '1', '--out', out);

    assert.equal(r.code, 0, r.stderr);
    const read = async (dir: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    const [before, after] = [await read(join(exported, 'adapter')), await read(out)];
    for (const key of ['r', 'lora_alpha', 'rank_pattern', 'alpha_pattern', 'use_rslora', 'target_modules', 'layers_to_transform']) {
      assert.deepEqual(after[key], before[key], key);
    }
  });
});
