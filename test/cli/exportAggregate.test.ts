// `fedex export` of a `fedex aggregate --out` folder, as users run it (in-process through the CLI):
// three clients trained with `fedex train` on the shipped tiny GPT-2, one offline FedEx round with
// `fedex aggregate`, then `fedex export <aggregate out>`. The exported adapter on the ORIGINAL base and
// the merged model must give the eval loss of what the aggregation wrote (its model with its global
// adapter); the global adapter alone on the original base must not (that is the residual folded in).
// A FedIT output exports its global adapter; an output without residual.safetensors (an older fedex
// aggregate) is refused; a bare .safetensors base records no folder, so a merged export needs --base.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cli } from '../helpers/cliRun.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import type { ExportReport } from '../../src/federation/export/exportFederation.js';
import type { AggregateReport } from '../../src/federation/offline/aggregateFolders.js';

const SHIPPED = fileURLToPath(new URL('../../models/tiny-gpt2', import.meta.url));

async function evalLoss(...args: string[]): Promise<number> {
  const r = await cli('eval', ...args, '--data', 'task:arith', '--max-examples', '48', '--no-exact-match', '--threads', '1', '--json');
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { loss: number }).loss;
}

async function aggregate(method: string, base: string, adapters: readonly string[], out: string): Promise<AggregateReport> {
  const r = await cli('aggregate', '--method', method, '--base', base, '--out', out, '--threads', '1', '--json', '--adapters', ...adapters);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as AggregateReport;
}

describe('fedex export of a fedex aggregate output', { timeout: 300_000 }, () => {
  const tmp = suiteTempDir('cli-export-aggregate');
  let clients: string[];
  let agg: string;
  let aggregated: number;

  before(async () => {
    clients = [];
    for (const seed of [1, 2, 3]) {
      const out = join(tmp.path, 'clients', `client-${seed}`);
      const r = await cli('train', '--data', 'task:arith', '--steps', '6', '--lr', '0.02', '--batch-size', '8', '--seq-len', '48', '--rank', '4', '--alpha', '8', '--threads', '1', '--seed', String(seed), '--eval-examples', '0', '--out',
        out);
      assert.equal(r.code, 0, r.stderr);
      clients.push(out);
    }
    agg = join(tmp.path, 'agg');
    const report = await aggregate('fedex', SHIPPED, clients, agg);
    assert.ok(report.summary.allWithinTolerance);
    assert.equal(report.residualFile, 'residual.safetensors');
    aggregated = await evalLoss('--model', agg, '--adapter', join(agg, 'adapter'));
  });

  test("adapter on the original base and merged model give the aggregate's own loss (1e-5); the export is exact; the global adapter alone is not the result", async () => {
    // act
    const out = join(tmp.path, 'both');
    const r = await cli('export', agg, '--out', out, '--as', 'both', '--threads', '1');
    // assert
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /fedex: 1\/1 rounds, 1 base step\(s\) \+ the global adapter/);
    assert.match(r.stdout, /exact in every module/);
    const report = JSON.parse(await readFile(join(out, 'export-report.json'), 'utf8')) as ExportReport;
    assert.equal(report.source.kind, 'aggregate');
    assert.equal(report.source.method, 'fedex');
    assert.equal(report.source.baseSteps, 1);
    assert.equal(report.base, SHIPPED, 'the base recorded by fedex aggregate');
    assert.equal(report.summary.exactModules, report.summary.modules);
    assert.equal(report.summary.modules, 3);
    for (const m of report.modules) {
      assert.equal(m.rank, m.exactRank, `${m.module}: the rank written is the exact rank`);
      assert.ok(m.truncationError <= 1e-7, `${m.module}: ${m.truncationError}`); // only what lies below the σ₁·2⁻²⁶ resolution
      assert.equal(m.innerDim, 3 * 4 + 4, `${m.module}: three rank-4 clients' residual plus the global adapter`);
      assert.ok(m.adapterCheck!.relativeError <= 1e-6, `${m.module}: adapter check ${m.adapterCheck!.relativeError}`);
      assert.ok(m.mergedCheck!.relativeError <= 1e-5, `${m.module}: merged check ${m.mergedCheck!.relativeError}`);
    }
    const config = JSON.parse(await readFile(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.base_model_name_or_path, SHIPPED);
    assert.equal(config.fan_in_fan_out, true);

    const adapterLoss = await evalLoss('--model', SHIPPED, '--adapter', join(out, 'adapter'));
    const mergedLoss = await evalLoss('--model', join(out, 'model'));
    const globalOnly = await evalLoss('--model', SHIPPED, '--adapter', join(agg, 'adapter'));
    assert.ok(Math.abs(adapterLoss - aggregated) <= 1e-5, `adapter on the original base ${adapterLoss} vs aggregate ${aggregated}`);
    assert.ok(Math.abs(mergedLoss - aggregated) <= 1e-5, `merged ${mergedLoss} vs aggregate ${aggregated}`);
    assert.ok(Math.abs(globalOnly - aggregated) > 1e-4, `the global adapter alone on the original base (${globalOnly}) should miss the residual (aggregate ${aggregated})`);
  });

  test('a fedit aggregate output exports its global adapter (no base step)', async () => {
    const fedit = join(tmp.path, 'agg-fedit');
    await aggregate('fedit', SHIPPED, clients, fedit);
    const out = join(tmp.path, 'fedit-export');
    const r = await cli('export', fedit, '--out', out, '--as', 'adapter', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ExportReport;
    assert.equal(report.source.kind, 'aggregate');
    assert.equal(report.source.method, 'fedit');
    assert.equal(report.source.baseSteps, 0);
    for (const m of report.modules) assert.ok(m.rank === m.exactRank && m.exactRank <= 4, `${m.module}: rank ${m.rank}, exact rank ${m.exactRank}`);
    const expected = await evalLoss('--model', SHIPPED, '--adapter', join(fedit, 'adapter'));
    const exported = await evalLoss('--model', SHIPPED, '--adapter', join(out, 'adapter'));
    assert.ok(Math.abs(exported - expected) <= 1e-5, `exported ${exported} vs the global adapter ${expected}`);
    const wrongMethod = await cli('export', fedit, '--method', 'fedex', '--out', join(tmp.path, 'never'));
    assert.equal(wrongMethod.code, 1);
    assert.match(wrongMethod.stderr, /\[EXPORT_SOURCE\] aggregate output .* holds a fedit aggregation, not fedex/);
  });

  test('an output without residual.safetensors (written by an older fedex aggregate) is refused: re-run fedex aggregate', async () => {
    const old = join(tmp.path, 'agg-old');
    await aggregate('fedex', SHIPPED, clients, old);
    await rm(join(old, 'residual.safetensors'));
    const out = join(tmp.path, 'old-export');
    const r = await cli('export', old, '--out', out);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[EXPORT_SOURCE\]/);
    assert.ok(r.stderr.includes(old), r.stderr);
    assert.match(r.stderr, /without residual\.safetensors/);
    assert.match(r.stderr, /re-run `fedex aggregate` with this version/);
    assert.equal(await readFile(join(out, 'export-report.json')).catch(() => null), null, 'nothing written');
  });

  test("a bare .safetensors base records no folder: a merged export needs --base; with it, the merged model is the aggregate's", async () => {
    const bare = join(tmp.path, 'agg-bare');
    const report = await aggregate('fedex', join(SHIPPED, 'model.safetensors'), clients, bare);
    assert.deepEqual([report.baseDir, report.baseHash], [null, null]);
    const refused = await cli('export', bare, '--out', join(tmp.path, 'bare-none'), '--as', 'merged');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /\[EXPORT_BASE\] aggregate output .* was made from a bare \.safetensors file .*give it with --base/);
    const out = join(tmp.path, 'bare-merged');
    const r = await cli('export', bare, '--out', out, '--as', 'merged', '--base', SHIPPED, '--threads', '1');
    assert.equal(r.code, 0, r.stderr);
    const mergedLoss = await evalLoss('--model', join(out, 'model'));
    assert.ok(Math.abs(mergedLoss - aggregated) <= 1e-5, `merged ${mergedLoss} vs aggregate ${aggregated}`);
  });
});
