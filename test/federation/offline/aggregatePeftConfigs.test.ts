// Offline aggregation of adapters as PEFT writes them: per-module rank and alpha from rank_pattern /
// alpha_pattern (each module scaled by its own alpha/r, checked against the clients in float64, the
// patterns written back unchanged), and trained classifier heads (modules_to_save tensors) averaged
// with the clients' weights and written beside the global factors.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRng, fillGaussian } from '../../../src/core/random.js';
import { aggregateFolders } from '../../../src/federation/offline/aggregateFolders.js';
import type { AggregateReport } from '../../../src/federation/offline/aggregateFolders.js';
import { readPeftAdapter, writePeftAdapter } from '../../../src/formats/peft.js';
import type { LoraModuleInput } from '../../../src/formats/peft.js';
import { exactness64, normalised, readAdapter64, readAll64 } from '../../helpers/lora64.js';
import { GPT2_SPEC, GPT2_TARGETS, makeFixture, suiteUpdater } from '../../helpers/offlineFixtures.js';
import type { Fixture } from '../../helpers/offlineFixtures.js';
import { suiteTempDir } from '../../helpers/tempDir.js';

const updater = suiteUpdater();
const ALPHA_PATTERN = { 'h.0.attn.c_attn': 32 };
const RANK_PATTERN = { 'mlp.c_fc': 2 };
const HEAD_SHAPE = [3, GPT2_SPEC.hidden];
const WEIGHTS = [1, 2, 3];
const tmp = suiteTempDir('aggregate-peft');
let fx: Fixture;
/** The clients' heads as written, for the reference mean. */
const heads: Float32Array[] = [];

/**
 * Rewrites the fixture's client adapters as PEFT writes a SEQ_CLS adapter with patterns: c_fc at rank
 * 2 (rank_pattern), layer 0's c_attn with alpha 32 (alpha_pattern), and a trained `score` head.
 */
async function rewriteClients(adapters: readonly string[]): Promise<void> {
  for (const [i, dir] of adapters.entries()) {
    const a = await readPeftAdapter(dir);
    const modules: LoraModuleInput[] = a.modules.map((m) => {
      if (!m.modulePath.endsWith('mlp.c_fc')) return { modulePath: m.modulePath, A: m.A, B: m.B, alpha: m.modulePath === 'transformer.h.0.attn.c_attn' ? 32 : 8 };
      const [r, inF] = m.A.shape;
      const outF = m.B.shape[0];
      const A = { shape: [2, inF] as [number, number], data: m.A.data.slice(0, 2 * inF) };
      const B = { shape: [outF, 2] as [number, number], data: Float32Array.from({ length: outF * 2 }, (_, j) => m.B.data[Math.floor(j / 2) * r + (j % 2)]) };
      return { modulePath: m.modulePath, A, B, alpha: 8 };
    });
    const head = fillGaussian(new Float32Array(HEAD_SHAPE[0] * HEAD_SHAPE[1]), createRng(100 + i));
    heads.push(head);
    await writePeftAdapter(dir, {
      config: { ...a.config, r: 4, loraAlpha: 8, rankPattern: RANK_PATTERN, alphaPattern: ALPHA_PATTERN, taskType: 'SEQ_CLS', modulesToSave: ['classifier', 'score'] },
      modules,
      extraTensors: new Map([['score.weight', { shape: HEAD_SHAPE, data: head }]]),
    });
  }
}

before(async () => {
  fx = await makeFixture(join(tmp.path, 'gpt2'), GPT2_SPEC, GPT2_TARGETS);
  await rewriteClients(fx.adapters);
});

describe('aggregateFolders over PEFT adapters with rank_pattern, alpha_pattern and a modules_to_save head', () => {
  let out: string;
  let report: AggregateReport;
  before(async () => {
    out = join(tmp.path, 'out');
    report = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, weights: WEIGHTS, out, updater, checkRows: 0 });
  });

  test("each module is scaled by its own alpha / r from the patterns, and W0' + s·(B̄Ā)ᵀ equals the clients' mean in float64", async () => {
    const byModule = new Map(report.modules.map((m) => [m.module, m]));
    const w0s = await readAll64(join(fx.base, 'model.safetensors'));
    const w1s = await readAll64(join(out, 'model.safetensors'));
    const global = await readAdapter64(join(out, 'adapter'));
    const clients = await Promise.all(fx.adapters.map((d) => readAdapter64(d)));

    assert.deepEqual([byModule.get('transformer.h.0.attn.c_attn')!.scale, byModule.get('transformer.h.0.attn.c_attn')!.rank], [8, 4], 'alpha 32 / r 4');
    assert.deepEqual([byModule.get('transformer.h.1.mlp.c_fc')!.scale, byModule.get('transformer.h.1.mlp.c_fc')!.rank], [4, 2], 'alpha 8 / r 2');
    assert.deepEqual([byModule.get('transformer.h.1.attn.c_attn')!.scale, byModule.get('transformer.h.1.attn.c_attn')!.rank], [2, 4], 'alpha 8 / r 4');
    assert.ok(report.summary.allWithinTolerance);
    for (const [module, g] of global.modules) {
      const { scale } = byModule.get(module)!;
      const key = `${module}.weight`;
      const e = exactness64({ w0: w0s.get(key)!, w0New: w1s.get(key)!, global: g, clients: clients.map((c) => c.modules.get(module)!), weights: normalised(3, WEIGHTS), scale, layout: 'conv1d' });
      assert.ok(e.err <= e.tol && e.updateMax > 100 * e.tol, `${module}: error ${e.err}, tolerance ${e.tol}, update ${e.updateMax}`);
    }
  });

  test("the global adapter keeps the patterns and reads back with each module's rank and alpha", async () => {
    const config = JSON.parse(await readFile(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    const back = await readPeftAdapter(join(out, 'adapter'));

    assert.deepEqual(config.alpha_pattern, ALPHA_PATTERN);
    assert.deepEqual(config.rank_pattern, RANK_PATTERN);
    assert.deepEqual(back.modules.map((m) => [m.modulePath, m.rank, m.alpha]).filter(([p]) => String(p).includes('h.0.')), [
      ['transformer.h.0.attn.c_attn', 4, 32],
      ['transformer.h.0.attn.c_proj', 4, 8],
      ['transformer.h.0.mlp.c_fc', 2, 8],
      ['transformer.h.0.mlp.c_proj', 4, 8],
    ]);
  });

  test("the trained head is the clients' weighted mean, written under base_model.model.score.weight with modules_to_save kept", async () => {
    const back = await readPeftAdapter(join(out, 'adapter'));
    const w = normalised(3, WEIGHTS);
    const want = Float64Array.from(heads[0], (_, j) => heads.reduce((s, h, i) => s + w[i] * h[j], 0));

    assert.deepEqual([...back.extraTensors.keys()], ['score.weight']);
    const got = back.extraTensors.get('score.weight')!;
    assert.deepEqual(got.shape, HEAD_SHAPE);
    const err = Math.max(...Array.from(got.data, (v, j) => Math.abs(v - want[j])));
    assert.ok(err < 1e-6, `max |head − Σ w_i head_i| = ${err}`);
    assert.deepEqual(back.config.modulesToSave, ['classifier', 'score']);
  });

  test('a client without the head, or with another shape, is refused naming the tensor', async () => {
    const other = join(tmp.path, 'headless');
    const a = await readPeftAdapter(fx.adapters[0]);
    await writePeftAdapter(other, { config: { ...a.config, modulesToSave: null }, modules: a.modules.map((m) => ({ modulePath: m.modulePath, A: m.A, B: m.B, alpha: m.alpha })) });

    await assert.rejects(
      aggregateFolders({ method: 'fedex', base: fx.base, adapters: [fx.adapters[0], other], out: join(tmp.path, 'never'), updater }),
      /adapter '.*headless' lacks the trained tensor 'base_model\.model\.score\.weight'/,
    );
  });
});
