// End-to-end offline aggregation over generated GPT-2 (Conv1D) and Llama (Linear, GQA) checkpoints,
// verified independently in float64 (test/helpers/lora64.ts reads the files itself and transposes
// explicitly for Conv1D).
//
// Tolerance of the exactness claim, per module: max |W0' + s·lay(B̄Ā) − Σ w_i (W0 + s·lay(B_i A_i))|
// ≤ 1e-5·max|s·Σ w_i B_i A_i| + 1e-6·max|W0|: float32 storage of W0', Ā, B̄ and one float32 Gemm
// round each entry at ~1e-7 relative, far below; a missing or mis-oriented residual is of the order
// of the update itself (checked below to be > 100× the tolerance).
import { before, describe, test } from 'node:test';
import { factored } from '../../core/reference.js';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { aggregateFolders } from '../../../src/federation/offline/aggregateFolders.js';
import type { AggregateReport } from '../../../src/federation/offline/aggregateFolders.js';
import { createBlockwiseUpdater } from '../../helpers/blockwiseUpdater.js';
import { readPeftAdapter, writePeftAdapter } from '../../../src/formats/peft.js';
import { openSafetensors } from '../../../src/formats/safetensors.js';
import { writeSafetensors } from '../../../src/formats/safetensorsWriter.js';
import type { TensorToWrite } from '../../../src/formats/safetensorsWriter.js';
import { downcastError } from '../../helpers/downcast.js';
import { createStrategy } from '../../../src/core/strategies/registry.js';
import { checkExactness, exactnessSampleRows } from '../../../src/core/exactness.js';
import type { ExactnessReport } from '../../../src/core/exactness.js';
import type { LoraModuleInput } from '../../../src/formats/peft.js';
import type { ProductBackend } from '../../../src/core/product.js';
import type { DowncastReport } from '../../../src/formats/halfFloat.js';
import { combine64, exactness64, laidOut, maxAbs, mul64, normalised, readAdapter64, readAll64, relativeDeviation64, idealUpdate } from '../../helpers/lora64.js';
import type { Adapter64, Exactness64, StoredLayout } from '../../helpers/lora64.js';
import { GPT2_SPEC, GPT2_TARGETS, LLAMA_SPEC, LLAMA_TARGETS, assertStructurePreserved, makeFixture, suiteProductBackend, suiteUpdater } from '../../helpers/offlineFixtures.js';
import type { Fixture } from '../../helpers/offlineFixtures.js';
import { entries, suiteTempDir } from '../../helpers/tempDir.js';

const backend = suiteProductBackend();
const updater = suiteUpdater();
const tmp = suiteTempDir('aggregate');

interface ModuleCheck extends Exactness64 {
  readonly module: string;
  readonly baseKey: string;
}

/**
 * Compares every adapted module of a FedEx output with the clients, in float64. The layout comes
 * from the test's own knowledge of the family (GPT-2: Conv1D, Llama: Linear), not from the code.
 */
async function checkAll(fx: Fixture, out: string, layout: StoredLayout, rawWeights?: readonly number[]): Promise<ModuleCheck[]> {
  const w0s = await readAll64(join(fx.base, 'model.safetensors'));
  const w1s = await readAll64(join(out, 'model.safetensors'));
  const global = await readAdapter64(join(out, 'adapter'));
  const clients: Adapter64[] = [];
  for (const dir of fx.adapters) clients.push(await readAdapter64(dir));
  const weights = normalised(clients.length, rawWeights);
  const scale = clients[0].alpha / clients[0].r;
  assert.equal(global.modules.size, clients[0].modules.size, 'every client module is in the global adapter');
  return [...global.modules].map(([module, g]) => {
    const baseKey = `${module}.weight`;
    return {
      module,
      baseKey,
      ...exactness64({ w0: w0s.get(baseKey)!, w0New: w1s.get(baseKey)!, global: g, clients: clients.map((c) => c.modules.get(module)!), weights, scale, layout }),
    };
  });
}

/** {@link checkAll}, asserting every module is exact and its update far above the tolerance. */
async function verifyFedex(fx: Fixture, out: string, layout: StoredLayout, rawWeights?: readonly number[]): Promise<ModuleCheck[]> {
  const checks = await checkAll(fx, out, layout, rawWeights);
  for (const c of checks) {
    assert.ok(c.err <= c.tol, `${c.module}: exactness error ${c.err} > tolerance ${c.tol}`);
    // A dropped residual (of the order of the update) could not hide inside the tolerance.
    assert.ok(c.updateMax > 100 * c.tol, `${c.module}: update ${c.updateMax} is not ≫ tolerance ${c.tol}`);
  }
  return checks;
}

function assertReportExact(report: AggregateReport, modules: number): void {
  assert.equal(report.modules.length, modules);
  assert.equal(report.modelWritten, true);
  assert.ok(report.summary.allWithinTolerance, 'report says every module is within tolerance');
  for (const m of report.modules) assert.ok(m.baseUpdated && m.relativeDeviation > 0, `${m.module}: base updated, deviation > 0`);
}

describe('aggregateFolders fedex on a GPT-2 (Conv1D, F32) checkpoint', () => {
  let fx: Fixture;
  let out: string;
  let report: AggregateReport;
  before(async () => {
    fx = await makeFixture(join(tmp.path, 'gpt2'), GPT2_SPEC, GPT2_TARGETS);
    out = join(tmp.path, 'gpt2-out');
    const seen: string[] = [];
    report = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, out, updater, checkRows: 0, onModule: (_d, _t, m) => seen.push(m) });
    assert.equal(seen.length, 8, 'onModule called once per adapted module (2 layers × 4)');
  });

  test("W0' + s·(B̄Ā)ᵀ equals the mean of the client models in float64", async () => {
    const checks = await verifyFedex(fx, out, 'conv1d');
    assert.equal(checks.length, 8);
    assertReportExact(report, 8);
    assert.deepEqual(report.weights.map((w) => Math.round(w * 1e12) / 1e12), [1 / 3, 1 / 3, 1 / 3].map((w) => Math.round(w * 1e12) / 1e12));
  });

  test('square c_proj: a wrongly transposed residual would fail the check by a wide margin', async () => {
    const module = 'transformer.h.0.attn.c_proj';
    const w0 = (await readAll64(join(fx.base, 'model.safetensors'))).get(`${module}.weight`)!;
    const w1 = (await readAll64(join(out, 'model.safetensors'))).get(`${module}.weight`)!;
    assert.equal(w0.rows, w0.cols, 'the module is square, so a wrong transpose gives no shape error');
    const g = (await readAdapter64(join(out, 'adapter'))).modules.get(module)!;
    const clients = await Promise.all(fx.adapters.map(async (d) => (await readAdapter64(d)).modules.get(module)!));
    const weights = normalised(3);
    const scale = 8 / 4;
    // The residual s·ΔR is far from symmetric, so ΔR and ΔRᵀ differ by much more than the tolerance.
    const residual = combine64([{ c: scale, m: idealUpdate(clients, weights) }, { c: -scale, m: mul64(g.B, g.A) }]);
    const asym = combine64([{ c: 1, m: residual }, { c: -1, m: laidOut(residual, 'conv1d') }]);
    const right = exactness64({ w0, w0New: w1, global: g, clients, weights, scale, layout: 'conv1d' });
    assert.ok(right.err <= right.tol, `correct orientation passes (${right.err} ≤ ${right.tol})`);
    assert.ok(maxAbs(asym.data) > 100 * right.tol, `ΔR is not symmetric (max |ΔR − ΔRᵀ| = ${maxAbs(asym.data)})`);

    // (1) An implementation that folded s·ΔR in untransposed (Linear orientation) into a Conv1D weight.
    const wrongW = combine64([{ c: 1, m: w1 }, { c: -1, m: laidOut(residual, 'conv1d') }, { c: 1, m: residual }]);
    const caught = exactness64({ w0, w0New: wrongW, global: g, clients, weights, scale, layout: 'conv1d' });
    assert.ok(caught.err > 100 * caught.tol, `a wrong transpose is caught: error ${caught.err} vs tolerance ${caught.tol}`);
    // (2) The right output read with the wrong (Linear) interpretation fails too: the check is layout-aware.
    const misread = exactness64({ w0, w0New: w1, global: g, clients, weights, scale, layout: 'linear' });
    assert.ok(misread.err > 100 * misread.tol, `the Linear reading fails: error ${misread.err} vs tolerance ${misread.tol}`);
  });

  test('names, order, shapes, dtypes and metadata preserved; unadapted tensors byte-identical', async () => {
    const adapted = new Set(report.modules.map((m) => m.baseKey));
    assert.equal(adapted.size, 8);
    const compared = await assertStructurePreserved(join(fx.base, 'model.safetensors'), join(out, 'model.safetensors'), adapted);
    assert.ok(compared >= 16, `biases, norms and embeddings compared bytewise (${compared})`);
  });

  test('base given as a .safetensors file (no config.json): Conv1D taken from fan_in_fan_out, still exact', async () => {
    const fileOut = join(tmp.path, 'gpt2-file-out');
    const r = await aggregateFolders({ method: 'fedex', base: join(fx.base, 'model.safetensors'), adapters: fx.adapters, out: fileOut, updater, checkRows: 0 });
    assert.ok(r.modules.every((m) => m.layout === 'conv1d'));
    assert.equal((await verifyFedex(fx, fileOut, 'conv1d')).length, 8);
  });

  test("writes a loadable PEFT adapter with the clients' config and a report.json equal to the result", async () => {
    const global = await readPeftAdapter(join(out, 'adapter'));
    const client = await readPeftAdapter(fx.adapters[0]);
    assert.equal(global.config.r, client.config.r);
    assert.equal(global.config.loraAlpha, client.config.loraAlpha);
    assert.equal(global.config.fanInFanOut, true);
    assert.deepEqual(global.modules.map((m) => m.modulePath), client.modules.map((m) => m.modulePath), "modules in the adapter's order");
    const json = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as AggregateReport;
    assert.equal(json.method, 'fedex');
    assert.deepEqual(json.modules.map((m) => m.module), report.modules.map((m) => m.module));
    assert.deepEqual((await entries(tmp.path)).filter((e) => e.includes('partial') || e.includes('.old-')), [], 'no temporary folders left');
  });
});

describe('aggregateFolders fedex on Llama (Linear, GQA) checkpoints', () => {
  test('F32 with explicit weights 3,1,2: exact, k/v non-square, structure preserved', async () => {
    const fx = await makeFixture(join(tmp.path, 'llama32'), LLAMA_SPEC, LLAMA_TARGETS);
    const out = join(tmp.path, 'llama32-out');
    const report = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, weights: [3, 1, 2], out, updater, checkRows: 0 });
    const checks = await verifyFedex(fx, out, 'linear', [3, 1, 2]);
    assert.equal(checks.length, 14);
    assertReportExact(report, 14);
    const expected = [0.5, 1 / 6, 1 / 3];
    report.weights.forEach((w, i) => assert.ok(Math.abs(w - expected[i]) < 1e-12, `weight ${i}: ${w}`));
    const k = report.modules.find((m) => m.module === 'model.layers.1.self_attn.k_proj')!;
    assert.deepEqual(k.storedShape, [24, 48], 'k_proj is kvHeads·headDim × hidden');
    // Read with uniform weights the same output fails: the explicit weights were used.
    const uniform = await checkAll(fx, out, 'linear');
    assert.ok(uniform.some((c) => c.err > 100 * c.tol), 'the output is not the uniform mean');
    await assertStructurePreserved(join(fx.base, 'model.safetensors'), join(out, 'model.safetensors'), new Set(report.modules.map((m) => m.baseKey)));
  });

  test('BF16: exact with --dtype float32; the BF16 output is its bf16 rounding (≤ 2^-8 relative per element)', async () => {
    const fx = await makeFixture(join(tmp.path, 'llamabf'), { ...LLAMA_SPEC, dtype: 'BF16', seed: 13 }, LLAMA_TARGETS, { seed: 22 });
    const out32 = join(tmp.path, 'llamabf-f32');
    const outBf = join(tmp.path, 'llamabf-same');
    const r32 = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, out: out32, dtype: 'float32', updater, checkRows: 0 });
    const rBf = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, out: outBf, updater, checkRows: 0 });
    await verifyFedex(fx, out32, 'linear');
    assertReportExact(r32, 14);

    const adapted = new Set(r32.modules.map((m) => m.baseKey));
    await assertStructurePreserved(join(fx.base, 'model.safetensors'), join(out32, 'model.safetensors'), adapted, 'F32');
    await assertStructurePreserved(join(fx.base, 'model.safetensors'), join(outBf, 'model.safetensors'), adapted, 'BF16');

    const f32 = await readAll64(join(out32, 'model.safetensors'));
    const bf = await readAll64(join(outBf, 'model.safetensors'));
    const w0 = await readAll64(join(fx.base, 'model.safetensors'));
    for (const key of adapted) {
      const x = f32.get(key)!.data;
      const y = bf.get(key)!.data;
      let changed = 0;
      for (let i = 0; i < x.length; i++) {
        assert.ok(Math.abs(y[i] - x[i]) <= 2 ** -8 * Math.abs(x[i]), `${key}[${i}]: bf16 ${y[i]} vs float32 ${x[i]}`);
        if (y[i] !== w0.get(key)!.data[i]) changed++;
      }
      assert.ok(changed > 0, `${key}: the residual changed some bf16 entries`);
      const m = rBf.modules.find((mm) => mm.baseKey === key)!;
      assert.equal(m.dtype, 'BF16');
      assert.ok(m.downcast !== undefined && m.downcast.maxAbsError > 0, `${key}: the down-cast is reported`);
    }
  });
});

describe('aggregateFolders fedit and ffa', () => {
  test('fedit: no model written, Ā and B̄ are weighted means, relative deviation matches float64', async () => {
    const fx = await makeFixture(join(tmp.path, 'fedit'), GPT2_SPEC, GPT2_TARGETS);
    const out = join(tmp.path, 'fedit-out');
    const raw = [1, 2, 3];
    const report = await aggregateFolders({ method: 'fedit', base: fx.base, adapters: fx.adapters, weights: raw, out, updater });
    assert.equal(report.modelWritten, false);
    assert.equal(await stat(join(out, 'model.safetensors')).catch(() => null), null, 'fedit writes no model.safetensors');
    const global = await readAdapter64(join(out, 'adapter'));
    const clients = await Promise.all(fx.adapters.map((d) => readAdapter64(d)));
    const weights = normalised(3, raw);
    for (const m of report.modules) {
      const f = clients.map((c) => c.modules.get(m.module)!);
      const g = global.modules.get(m.module)!;
      const meanA = combine64(f.map((x, i) => ({ c: weights[i], m: x.A })));
      const meanB = combine64(f.map((x, i) => ({ c: weights[i], m: x.B })));
      assert.ok(maxAbs(combine64([{ c: 1, m: g.A }, { c: -1, m: meanA }]).data) <= 1e-6 * maxAbs(meanA.data), `${m.module}: Ā`);
      assert.ok(maxAbs(combine64([{ c: 1, m: g.B }, { c: -1, m: meanB }]).data) <= 1e-6 * maxAbs(meanB.data), `${m.module}: B̄`);
      const ref = relativeDeviation64(f, weights, g, 2);
      assert.ok(m.relativeDeviation > 0.05, `${m.module}: FedIT loses a visible share (${m.relativeDeviation})`);
      assert.ok(Math.abs(m.relativeDeviation - ref) <= 1e-6 * ref, `${m.module}: relative deviation ${m.relativeDeviation} vs float64 ${ref}`);
    }
  });

  test('ffa with a shared A: Ā is the shared A bit for bit, B̄ the mean, no model written', async () => {
    const fx = await makeFixture(join(tmp.path, 'ffa'), LLAMA_SPEC, ['q_proj', 'v_proj'], { sharedA: true });
    const out = join(tmp.path, 'ffa-out');
    const report = await aggregateFolders({ method: 'ffa', base: fx.base, adapters: fx.adapters, out, updater });
    assert.equal(report.modelWritten, false);
    assert.equal(await stat(join(out, 'model.safetensors')).catch(() => null), null);
    const global = await readAdapter64(join(out, 'adapter'));
    const clients = await Promise.all(fx.adapters.map((d) => readAdapter64(d)));
    assert.equal(global.modules.size, 4);
    for (const [module, g] of global.modules) {
      assert.deepEqual(g.A.data, clients[0].modules.get(module)!.A.data, `${module}: Ā is the shared A exactly`);
      const meanB = combine64(clients.map((c) => ({ c: 1 / 3, m: c.modules.get(module)!.B })));
      assert.ok(maxAbs(combine64([{ c: 1, m: g.B }, { c: -1, m: meanB }]).data) <= 1e-6 * maxAbs(meanB.data), `${module}: B̄`);
    }
    for (const m of report.modules) assert.ok(m.relativeDeviation <= 1e-6, `${m.module}: no deviation with a shared A (${m.relativeDeviation})`);
  });

  test('ffa with differing A fails naming the module and the client, and writes nothing', async () => {
    const fx = await makeFixture(join(tmp.path, 'ffa-bad'), LLAMA_SPEC, ['q_proj']);
    const parent = join(tmp.path, 'ffa-bad-parent');
    const out = join(parent, 'out');
    await assert.rejects(
      aggregateFolders({ method: 'ffa', base: fx.base, adapters: fx.adapters, out, updater }),
      (err: Error) => /ffa/.test(err.message) && /model\.layers\.0\.self_attn\.q_proj/.test(err.message) && /client-1/.test(err.message) && /lora_A differs/.test(err.message),
    );
    assert.deepEqual(await entries(parent).catch(() => []), [], 'nothing written beside the output');
  });
});

/**
 * The whole-model, in-memory aggregation the streaming code replaced (a Llama checkpoint, Linear):
 * every client adapter read whole, each weight read whole and copied before the update, the
 * down-cast measured on the finished copy, the global adapter written at the end.
 */
async function inMemoryAggregation(fx: Fixture, out: string, weights: readonly number[], checkRows: number): Promise<{ exactness: ExactnessReport[]; downcast: DowncastReport[] }> {
  const clients = await Promise.all(fx.adapters.map((d) => readPeftAdapter(d)));
  const strategy = createStrategy('fedex', { weighting: 'explicit' });
  const reader = await openSafetensors(join(fx.base, 'model.safetensors'));
  const tensors = new Map<string, TensorToWrite>();
  const globals = new Map<string, LoraModuleInput>();
  const exactness: ExactnessReport[] = [];
  const downcast: DowncastReport[] = [];
  for (const info of reader.tensors.values()) {
    const index = clients[0].modules.findIndex((m) => `${m.modulePath}.weight` === info.name);
    if (index < 0) {
      tensors.set(info.name, { dtype: info.dtype, shape: info.shape, data: await reader.readRaw(info.name) });
      continue;
    }
    const m = clients[0].modules[index];
    const spec = { name: m.modulePath, inFeatures: m.A.shape[1], outFeatures: m.B.shape[0], rank: m.rank, alpha: m.alpha, useRslora: false, layout: 'linear' as const };
    const results = clients.map((c, client) => ({ client, factors: { a: c.modules[index].A, b: c.modules[index].B }, weight: weights[client] }));
    const agg = strategy.aggregate(1, { spec, factors: null }, results, [])!;
    const w0 = await reader.readMatrix(info.name);
    const updated = { shape: w0.shape, data: Float32Array.from(w0.data) };
    const u = factored(agg.baseUpdate);
    await backend.addScaledProduct(updated, 'linear', u.p, u.q, u.scale);
    exactness.push(checkExactness({
      w0,
      result: { kind: 'adapter', w0New: updated, global: agg.global.factors! },
      clients: results.map((r) => r.factors),
      weights: agg.metrics.weights,
      scale: agg.metrics.scale,
      layout: 'linear',
    }, exactnessSampleRows(w0.shape[0], checkRows, exactness.length + 1)));
    downcast.push(downcastError(updated.data, 'BF16'));
    tensors.set(info.name, { dtype: info.dtype, shape: info.shape, data: updated.data });
    globals.set(m.modulePath, { modulePath: m.modulePath, A: agg.global.factors!.a, B: agg.global.factors!.b });
  }
  await reader.close();
  await mkdir(out, { recursive: true });
  await writeSafetensors(join(out, 'model.safetensors'), tensors, reader.metadata);
  await writePeftAdapter(join(out, 'adapter'), { config: { ...clients[0].config }, modules: clients[0].modules.map((m) => globals.get(m.modulePath)!) });
  return { exactness, downcast };
}

describe('aggregateFolders streams module by module', () => {
  test('BF16 Llama, weights 3,1,2: adapter, model and report equal the whole-model in-memory aggregation byte for byte', async () => {
    // prepare
    const fx = await makeFixture(join(tmp.path, 'stream-ref'), { ...LLAMA_SPEC, dtype: 'BF16', seed: 31 }, LLAMA_TARGETS, { seed: 32 });
    const out = join(tmp.path, 'stream-ref-out');
    const ref = join(tmp.path, 'stream-ref-memory');
    // act
    const report = await aggregateFolders({ method: 'fedex', base: fx.base, adapters: fx.adapters, weights: [3, 1, 2], out, updater, checkRows: 7 });
    const expected = await inMemoryAggregation(fx, ref, [3, 1, 2], 7);
    // assert
    for (const file of ['model.safetensors', join('adapter', 'adapter_model.safetensors'), join('adapter', 'adapter_config.json')]) {
      assert.ok((await readFile(join(out, file))).equals(await readFile(join(ref, file))), `${file} is byte-identical`);
    }
    assert.deepEqual(report.modules.map((m) => m.exactness), expected.exactness, 'the same rows checked, with the same results, from the kept pre-update rows');
    // The rounding report: counts and the max error exactly; the ratios are float32 reductions in the
    // graph (max relative error to 1e-6, the relative Frobenius error to 1e-5 of a float64 pass).
    report.modules.forEach((m, i) => {
      const got = m.downcast!;
      const want = expected.downcast[i];
      assert.deepEqual([got.dtype, got.count, got.maxAbsError, got.overflowCount, got.underflowCount], [want.dtype, want.count, want.maxAbsError, want.overflowCount, want.underflowCount], m.module);
      assert.ok(Math.abs(got.maxRelError - want.maxRelError) <= 1e-6 * want.maxRelError, `${m.module}: maxRelError ${got.maxRelError} vs ${want.maxRelError}`);
      assert.ok(Math.abs(got.relativeError - want.relativeError) <= 1e-5 * want.relativeError, `${m.module}: relativeError ${got.relativeError} vs ${want.relativeError}`);
    });
    assert.ok(report.modules.every((m) => m.exactness.rowsChecked === 7 && m.downcast!.maxAbsError > 0));
  });

  test('an update corrupted after the fused product is caught by the sampled check of that module only', async () => {
    // prepare: a backend that applies the right update, then shifts every entry of the third module
    // (the blockwise TypeScript updater on it: the same streaming, with the fault injected per block)
    const fx = await makeFixture(join(tmp.path, 'corrupt'), GPT2_SPEC, GPT2_TARGETS);
    let modulesDone = 0;
    const faulty: ProductBackend = {
      name: 'faulty',
      async addScaledProduct(target, layout, p, q, scale) {
        await backend.addScaledProduct(target, layout, p, q, scale);
        if (modulesDone === 2) { for (let i = 0; i < target.data.length; i++) target.data[i] += 1e-3; }
      },
    };
    // act
    const report = await aggregateFolders({
      method: 'fedex',
      base: fx.base,
      adapters: fx.adapters,
      out: join(tmp.path, 'corrupt-out'),
      updater: createBlockwiseUpdater(faulty, 256),
      checkRows: 2,
      onModule: (done) => {
        modulesDone = done;
      },
    });
    // assert
    assert.equal(report.summary.allWithinTolerance, false);
    report.modules.forEach((m, i) => {
      assert.equal(m.exactness.withinTolerance, i !== 2, `${m.module}: within tolerance ${m.exactness.withinTolerance}`);
      if (i === 2) assert.ok(Math.abs(m.exactness.maxAbsError - 1e-3) < 1e-5, `${m.module}: the shift is the error (${m.exactness.maxAbsError})`);
    });
  });
});
