// FedEx offline aggregation keeps the residual it folds into the base (residual.safetensors, the
// coordinator's step-file format, linear orientation) and records the base (absolute folder and
// content hash) in report.json, so that `fedex export` can rebuild one adapter relative to the input
// base; the output folder opened as an export source (openAggregateUpdate) adds up to the model the
// aggregation wrote plus its global adapter. Verified in float64 from the files themselves.
//
// Tolerance, per module: max |s·lay(P·Q) − (W0' − W0)| ≤ 1e-5·max|s·P·Q| + 1e-6·max|W0|: W0' is the
// float32 rounding of W0 + s·lay(P·Q) computed in float32 (~1e-7 relative per entry); a missing or
// mis-oriented residual is of the order of the update itself (checked to be > 100× the tolerance).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { UpdateTerm } from '../../../src/core/lowRank.js';
import { openAggregateUpdate } from '../../../src/federation/export/aggregateSource.js';
import { ExportError } from '../../../src/federation/export/errors.js';
import { aggregateFolders, RESIDUAL_FILE } from '../../../src/federation/offline/aggregateFolders.js';
import type { AggregateReport } from '../../../src/federation/offline/aggregateFolders.js';
import type { ResidualEntry } from '../../../src/federation/protocol/adapterTensors.js';
import { modelManifest } from '../../../src/federation/shared/modelBase.js';
import { combine64, laidOut, maxAbs, mul64, readAdapter64, readAll64 } from '../../helpers/lora64.js';
import type { Mat64, StoredLayout } from '../../helpers/lora64.js';
import { GPT2_SPEC, GPT2_TARGETS, LLAMA_SPEC, LLAMA_TARGETS, layoutOf, makeFixture, suiteUpdater } from '../../helpers/offlineFixtures.js';
import type { Fixture } from '../../helpers/offlineFixtures.js';
import { entries, suiteTempDir } from '../../helpers/tempDir.js';

const updater = suiteUpdater();
const tmp = suiteTempDir('aggregate-residual');

interface ResidualFile {
  readonly entries: ResidualEntry[];
  readonly round: string | undefined;
  readonly tensors: Map<string, Mat64>;
  readonly layout: { name: string; dtype: string; shape: number[] }[];
}

async function readResidual(out: string): Promise<ResidualFile> {
  const file = join(out, RESIDUAL_FILE);
  const { tensors: layout, metadata } = await layoutOf(file);
  return { entries: JSON.parse(metadata['fedex.entries']) as ResidualEntry[], round: metadata['fedex.round'], tensors: await readAll64(file), layout };
}

/** s·P·Q of a module from residual.safetensors, out × in, float64. */
function residualProduct(r: ResidualFile, module: string): Mat64 {
  const e = r.entries.find((x) => x.module === module)!;
  return combine64([{ c: e.scale, m: mul64(r.tensors.get(`${module}.residual_P`)!, r.tensors.get(`${module}.residual_Q`)!) }]);
}

/** max |lay(s·P·Q) − (W0' − W0)| against the tolerance above, per module. */
function residualError(w0: Mat64, w1: Mat64, sPQ: Mat64, layout: StoredLayout): { err: number; tol: number; updateMax: number } {
  const delta = combine64([{ c: 1, m: w1 }, { c: -1, m: w0 }]);
  const laid = laidOut(sPQ, layout);
  assert.deepEqual([laid.rows, laid.cols], [w0.rows, w0.cols], 'the residual, laid out, has the stored shape');
  const updateMax = maxAbs(sPQ.data);
  return { err: maxAbs(combine64([{ c: 1, m: laid }, { c: -1, m: delta }]).data), tol: 1e-5 * updateMax + 1e-6 * maxAbs(w0.data), updateMax };
}

/** Checks residual.safetensors against the written model: format, shapes, and s·lay(P·Q) = W0' − W0 for every module. */
async function verifyResidual(fx: Fixture, out: string, report: AggregateReport, layout: StoredLayout, clients: number, rank: number): Promise<ResidualFile> {
  const r = await readResidual(out);
  const w0s = await readAll64(join(fx.base, 'model.safetensors'));
  const w1s = await readAll64(join(out, 'model.safetensors'));
  assert.equal(r.round, '1');
  assert.deepEqual(r.entries.map((e) => e.module), report.modules.map((m) => m.module), 'one entry per module, in the order aggregated');
  assert.deepEqual(r.layout.map((t) => t.name), r.entries.flatMap((e) => [`${e.module}.residual_P`, `${e.module}.residual_Q`]), 'tensors named as in a coordinator step file, P then Q per module');
  for (const t of r.layout) assert.equal(t.dtype, 'F32', `${t.name} is float32`);
  for (const m of report.modules) {
    const e = r.entries.find((x) => x.module === m.module)!;
    assert.equal(e.form, 'factored');
    assert.equal(e.scale, m.scale, `${m.module}: the entry's scale is the module's s`);
    assert.equal(e.innerDim, clients * rank, `${m.module}: the stacked residual of ${clients} rank-${rank} clients`);
    const [rows, cols] = m.storedShape;
    const [out, inF] = layout === 'conv1d' ? [cols, rows] : [rows, cols];
    assert.deepEqual(r.tensors.get(`${m.module}.residual_P`)!.rows, out, `${m.module}: P is out × inner (linear orientation)`);
    assert.deepEqual(r.tensors.get(`${m.module}.residual_Q`)!.cols, inF, `${m.module}: Q is inner × in (linear orientation)`);
    const c = residualError(w0s.get(m.baseKey)!, w1s.get(m.baseKey)!, residualProduct(r, m.module), layout);
    assert.ok(c.err <= c.tol, `${m.module}: s·lay(P·Q) vs W0' − W0: error ${c.err} > tolerance ${c.tol}`);
    assert.ok(c.updateMax > 100 * c.tol, `${m.module}: residual ${c.updateMax} is not ≫ tolerance ${c.tol}`);
  }
  return r;
}

describe('fedex aggregate keeps the residual it folds into the base', () => {
  test("GPT-2 (Conv1D): residual.safetensors in the linear orientation, s·(P·Q)ᵀ = W0' − W0; report.json records the base folder and its content hash", async () => {
    // prepare
    const fx = await makeFixture(join(tmp.path, 'gpt2'), GPT2_SPEC, GPT2_TARGETS);
    const out = join(tmp.path, 'gpt2-out');
    // act
    const report = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, out, updater, checkRows: 0 });
    // assert
    const r = await verifyResidual(fx, out, report, 'conv1d', 3, 4);
    assert.equal(r.entries.length, 8);
    // A square module: read in the Conv1D layout without the transpose, the residual misses by far.
    const module = 'transformer.h.0.attn.c_proj';
    const w0 = (await readAll64(join(fx.base, 'model.safetensors'))).get(`${module}.weight`)!;
    const w1 = (await readAll64(join(out, 'model.safetensors'))).get(`${module}.weight`)!;
    assert.equal(w0.rows, w0.cols);
    const wrong = residualError(w0, w1, residualProduct(r, module), 'linear');
    assert.ok(wrong.err > 100 * wrong.tol, `untransposed, the residual fails (${wrong.err} vs ${wrong.tol})`);

    const json = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as AggregateReport;
    assert.equal(json.baseDir, resolve(fx.base));
    assert.equal(json.baseHash, (await modelManifest(fx.base)).hash);
    assert.match(json.baseHash!, /^[0-9a-f]{64}$/);
    assert.equal(json.residualFile, RESIDUAL_FILE);
    assert.deepEqual([report.baseDir, report.baseHash, report.residualFile], [json.baseDir, json.baseHash, json.residualFile], 'the returned report is the written one');
    assert.equal(json.base, join(fx.base, 'model.safetensors'), 'the existing field is unchanged');
    assert.deepEqual(await entries(out), ['adapter', 'config.json', 'model.safetensors', 'report.json', RESIDUAL_FILE].sort(), 'no part files left behind');
  });

  test("Llama (Linear, GQA, non-square k/v) with weights 3,1,2: s·P·Q = W0' − W0", async () => {
    const fx = await makeFixture(join(tmp.path, 'llama'), LLAMA_SPEC, LLAMA_TARGETS);
    const out = join(tmp.path, 'llama-out');
    const report = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, weights: [3, 1, 2], out, updater, checkRows: 0 });
    const r = await verifyResidual(fx, out, report, 'linear', 3, 4);
    assert.equal(r.entries.length, 14);
    assert.deepEqual([r.tensors.get('model.layers.1.self_attn.k_proj.residual_P')!.rows, r.tensors.get('model.layers.1.self_attn.k_proj.residual_Q')!.cols], [24, 48]);
    assert.equal(report.baseHash, (await modelManifest(fx.base)).hash);
  });

  test('a bare .safetensors base: the residual is written; no base folder or hash is recorded (null)', async () => {
    const fx = await makeFixture(join(tmp.path, 'bare'), GPT2_SPEC, ['c_attn']);
    const out = join(tmp.path, 'bare-out');
    const report = await aggregateFolders({ method: 'fedex', base: join(fx.base, 'model.safetensors'), adapters: fx.adapters, out, updater, checkRows: 0 });
    await verifyResidual(fx, out, report, 'conv1d', 3, 4);
    const json = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as AggregateReport;
    assert.equal(json.baseDir, null);
    assert.equal(json.baseHash, null);
  });

  test('one client leaves nothing to fold in: residual.safetensors holds no tensors and no entries, and the source has the global adapter only', async () => {
    const fx = await makeFixture(join(tmp.path, 'one'), GPT2_SPEC, ['c_attn']);
    const out = join(tmp.path, 'one-out');
    const report = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters.slice(0, 1), out, updater });
    assert.ok(report.modules.every((m) => !m.baseUpdated));
    const r = await readResidual(out);
    assert.deepEqual([r.entries, r.layout, r.round], [[], [], '1']);
    const source = await openAggregateUpdate(out);
    try {
      assert.equal(source.steps, 1);
      for (const m of source.layout) assert.equal((await source.terms(m)).length, 1, `${m.module}: the global adapter only`);
    } finally {
      await source.close();
    }
  });

  test('fedit and ffa change no base weight: no residual.safetensors (residualFile null), the base is still recorded', async () => {
    const fx = await makeFixture(join(tmp.path, 'fedit'), LLAMA_SPEC, ['q_proj', 'v_proj'], { sharedA: true });
    const hash = (await modelManifest(fx.base)).hash;
    for (const method of ['fedit', 'ffa'] as const) {
      const out = join(tmp.path, `${method}-out`);
      const report = await aggregateFolders({ method, base: fx.base, adapters: fx.adapters, out, updater });
      assert.equal(await stat(join(out, RESIDUAL_FILE)).catch(() => null), null, `${method}: no residual file`);
      assert.deepEqual(await entries(out), ['adapter', 'report.json']);
      const json = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as AggregateReport;
      assert.deepEqual([json.residualFile, json.baseDir, json.baseHash], [null, resolve(fx.base), hash], method);
      assert.equal(report.residualFile, null);
    }
  });
});

/** Σ terms in float64, out × in. */
function dense(terms: readonly UpdateTerm[], out: number, inF: number): Mat64 {
  const acc = new Float64Array(out * inF);
  for (const t of terms) {
    assert.equal(t.kind, 'factored');
    if (t.kind !== 'factored') continue;
    const k = t.p.shape[1];
    for (let o = 0; o < out; o++)
      for (let j = 0; j < k; j++) {
        const f = t.scale * t.p.data[o * k + j];
        for (let c = 0; c < inF; c++) acc[o * inF + c] += f * t.q.data[j * inF + c];
      }
  }
  return { rows: out, cols: inF, data: acc };
}

describe('an aggregate output as an export source (openAggregateUpdate)', () => {
  let fx: Fixture;
  before(async () => {
    // rsLoRA (scaling alpha/√r) and, for q_proj, alpha 16 by alpha_pattern: each module's own scaling.
    fx = await makeFixture(join(tmp.path, 'source'), LLAMA_SPEC, LLAMA_TARGETS, { useRslora: true });
    for (const dir of fx.adapters) {
      const file = join(dir, 'adapter_config.json');
      const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...config, alpha_pattern: { q_proj: 16 } }, null, 2));
    }
  });

  test("fedex: the residual then the global adapter at its own scaling add up to W0' − W0 + s·B̄Ā; one base step, base folder and hash from report.json", async () => {
    const out = join(tmp.path, 'source-fedex');
    const report = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, out, updater, checkRows: 0 });
    const w0s = await readAll64(join(fx.base, 'model.safetensors'));
    const w1s = await readAll64(join(out, 'model.safetensors'));
    const global = await readAdapter64(join(out, 'adapter'));
    const source = await openAggregateUpdate(out);
    try {
      assert.equal(source.kind, 'aggregate');
      assert.equal(source.method, 'fedex');
      assert.equal(source.runDir, resolve(out));
      assert.deepEqual([source.steps, source.rounds, source.roundsCompleted, source.round, source.finished], [1, 1, 1, 1, true]);
      assert.equal(source.modelDir, resolve(fx.base));
      assert.equal(source.baseHash, (await modelManifest(fx.base)).hash);
      assert.deepEqual(source.layout.map((m) => m.module), [...global.modules.keys()]);
      assert.ok(source.layout.every((m) => m.fanInFanOut === false && m.rank === 4), 'Llama: linear, rank 4');
      for (const m of source.layout) {
        const rep = report.modules.find((x) => x.module === m.module)!;
        const scale = m.module.endsWith('q_proj') ? 16 / 2 : 8 / 2;
        assert.equal(rep.scale, scale, `${m.module}: the aggregation used alpha/√r`);
        const terms = await source.terms(m);
        assert.equal(terms.length, 2, `${m.module}: the residual, then the global adapter`);
        assert.equal(terms[1].scale, scale, `${m.module}: the global adapter at its own scaling`);
        const g = global.modules.get(m.module)!;
        const total = dense(terms, m.out, m.in);
        const expected = combine64([{ c: 1, m: w1s.get(rep.baseKey)! }, { c: -1, m: w0s.get(rep.baseKey)! }, { c: scale, m: mul64(g.B, g.A) }]);
        const err = maxAbs(combine64([{ c: 1, m: total }, { c: -1, m: expected }]).data);
        const tol = 1e-5 * maxAbs(expected.data) + 1e-6 * maxAbs(w0s.get(rep.baseKey)!.data);
        assert.ok(err <= tol, `${m.module}: Σ terms vs W0' − W0 + s·B̄Ā: ${err} > ${tol}`);
        assert.ok(maxAbs(dense([terms[0]], m.out, m.in).data) > 100 * tol, `${m.module}: the residual term matters`);
      }
    } finally {
      await source.close();
    }
  });

  test('fedit: the global adapter alone, no base step', async () => {
    const out = join(tmp.path, 'source-fedit');
    await aggregateFolders({ method: 'fedit', base: fx.base, adapters: fx.adapters, out, updater });
    const source = await openAggregateUpdate(out);
    try {
      assert.equal(source.method, 'fedit');
      assert.equal(source.steps, 0);
      const m = source.layout[0];
      const terms = await source.terms(m);
      assert.equal(terms.length, 1);
      assert.equal(terms[0].scale, m.module.endsWith('q_proj') ? 8 : 4);
    } finally {
      await source.close();
    }
  });

  test('a fedex output without residual.safetensors (an older fedex aggregate) is refused: re-run fedex aggregate', async () => {
    const out = join(tmp.path, 'source-old');
    await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, out, updater });
    await rm(join(out, RESIDUAL_FILE));
    await assert.rejects(openAggregateUpdate(out), (err: Error) =>
      err instanceof ExportError && err.code === 'EXPORT_SOURCE'
      && err.message.includes(resolve(out)) && /without residual\.safetensors/.test(err.message) && /re-run `fedex aggregate` with this version/.test(err.message));
  });
});
