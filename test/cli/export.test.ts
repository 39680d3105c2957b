// `fedex export` as users run it: `fedex simulate` (3 rounds, non-IID, the shipped model) and
// `fedex export` as real processes, then `fedex eval` on what was written. The exported adapter on
// the ORIGINAL base and the merged model must give the federated model's eval loss; the global
// adapter alone must not (that is the residual every round folded in).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cli } from '../helpers/cliRun.js';
import { spawnFedex } from '../helpers/fedexProcess.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { openRunUpdate } from '../../src/federation/export/runUpdate.js';
import { readRunState } from '../../src/federation/coordinator/store.js';
import { withSafetensors } from '../../src/formats/safetensors.js';
import { exportFederation, type ExportReport } from '../../src/federation/export/exportFederation.js';
import { typeScriptGemm, type GemmBackend } from '../../src/core/lowRank.js';
import type { UpdateTerm } from '../../src/core/lowRank.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHIPPED = join(ROOT, 'models', 'tiny-gpt2');

async function evalLoss(...args: string[]): Promise<number> {
  const r = await cli('eval', ...args, '--data', 'task:arith', '--max-examples', '48', '--no-exact-match', '--json');
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { loss: number }).loss;
}

async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return spawnFedex(args).done;
}

/** Σ terms in float64, out × in. */
function dense(terms: readonly UpdateTerm[], out: number, inF: number): Float64Array {
  const acc = new Float64Array(out * inF);
  for (const t of terms) {
    if (t.kind === 'dense') {
      for (let i = 0; i < acc.length; i++) acc[i] += t.scale * t.d.data[i];
      continue;
    }
    const k = t.p.shape[1];
    for (let o = 0; o < out; o++)
      for (let j = 0; j < k; j++) {
        const f = t.scale * t.p.data[o * k + j];
        for (let c = 0; c < inF; c++) acc[o * inF + c] += f * t.q.data[j * inF + c];
      }
  }
  return acc;
}

/** PEFT's rule for rank_pattern / alpha_pattern keys (peft.utils.other.get_pattern_key): the key matches the end of the module path at a dot. */
function peftPattern(patterns: Record<string, number>, fallback: number, modulePath: string): number {
  const key = Object.keys(patterns).find((k) => new RegExp(`(.*\\.)?(${k})$`).test(modulePath));
  return key === undefined ? fallback : patterns[key];
}

describe('fedex export: a FedEx federation as one exact PEFT adapter on the original base, and as a merged model', { timeout: 600_000 }, () => {
  const tmp = suiteTempDir('export');
  let sim: string;
  let federatedLoss: number;

  before(async () => {
    sim = join(tmp.path, 'sim');
    const r = await run(['simulate', '--seeds', '1', '--methods', 'fedex,fedit', '--rounds', '3', '--local-steps', '4', '--eval-examples', '24', '--out', sim, '--save-adapters']);
    assert.equal(r.code, 0, r.stderr);
    const last = join(sim, 'adapters', 'fedex', 'round-003');
    federatedLoss = await evalLoss('--model', join(last, 'base'), '--adapter', join(last, 'global'));
  });

  test("adapter and merged model give the federated model's eval loss (float32 round-off); the global adapter alone does not", async () => {
    const out = join(tmp.path, 'both');
    const r = await run(['export', sim, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /exporting the fedex run of .* \(it also holds fedit; --method chooses\)/);
    assert.match(r.stdout, /exact in every module/);
    const adapterLoss = await evalLoss('--model', SHIPPED, '--adapter', join(out, 'adapter'));
    const mergedLoss = await evalLoss('--model', join(out, 'model'));
    const globalOnly = await evalLoss('--model', SHIPPED, '--adapter', join(sim, 'adapters', 'fedex', 'round-003', 'global'));
    assert.ok(Math.abs(adapterLoss - federatedLoss) <= 1e-5, `adapter ${adapterLoss} vs federated ${federatedLoss}`);
    assert.ok(Math.abs(mergedLoss - federatedLoss) <= 1e-5, `merged ${mergedLoss} vs federated ${federatedLoss}`);
    assert.ok(Math.abs(globalOnly - federatedLoss) > 1e-4, `the global adapter alone (${globalOnly}) should miss the folded residuals`);
    const report = JSON.parse(await readFile(join(out, 'export-report.json'), 'utf8')) as ExportReport;
    assert.equal(report.source.method, 'fedex');
    assert.equal(report.source.baseSteps, 3);
    for (const m of report.modules) {
      assert.equal(m.rank, m.exactRank);
      assert.equal(m.innerDim, 3 * 3 * 8 + 8, 'three rounds of three rank-8 clients plus the global adapter');
      // Each round's residual has rank (k − 1)·r; the rest of the stack is float32 rounding of Ā, below the resolution.
      assert.equal(m.exactRank, 3 * (3 - 1) * 8 + 8);
      assert.ok(m.truncationError <= 1e-7, `${m.module}: ${m.truncationError}`);
      assert.ok(m.adapterCheck!.relativeError <= 1e-6, `${m.module}: adapter check ${m.adapterCheck!.relativeError}`);
      assert.ok(m.mergedCheck!.relativeError <= 1e-5, `${m.module}: merged check ${m.mergedCheck!.relativeError}`);
    }
  });

  test('--max-rank: the reported truncation error matches a float64 recomputation from the run directory', async () => {
    const out = join(tmp.path, 'rank12');
    const r = await run(['export', sim, '--out', out, '--as', 'adapter', '--max-rank', '12']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(await readFile(join(out, 'export-report.json'), 'utf8')) as ExportReport;
    const runDir = join(sim, 'runs', 'fedex');
    const update = await openRunUpdate(runDir);
    try {
      const plan = (await readRunState(runDir)).plan;
      await withSafetensors(join(out, 'adapter', 'adapter_model.safetensors'), async (st) => {
        for (const m of plan.layout) {
          const exact = dense(await update.terms(m), m.out, m.in);
          const a = await st.readMatrix(`base_model.model.${m.module}.lora_A.weight`);
          const b = await st.readMatrix(`base_model.model.${m.module}.lora_B.weight`);
          assert.deepEqual(a.shape, [12, m.in]);
          const ba = dense([{ kind: 'factored', p: b, q: a, scale: 1 }], m.out, m.in);
          let err = 0;
          let ref = 0;
          for (let i = 0; i < exact.length; i++) {
            err += (exact[i] - ba[i]) ** 2;
            ref += exact[i] ** 2;
          }
          const measured = Math.sqrt(err / ref);
          const reported = report.modules.find((x) => x.module === m.module)!.truncationError;
          assert.ok(reported > 1e-3, 'rank 12 of 56 truncates');
          assert.ok(Math.abs(measured - reported) <= 1e-5 * Math.max(1, reported), `${m.module}: reported ${reported}, measured ${measured}`);
        }
      });
    } finally {
      await update.close();
    }
  });

  test("the adapter follows PEFT's conventions: per-module ranks and alphas by rank_pattern/alpha_pattern, key names, fan_in_fan_out for GPT-2", async () => {
    const out = join(tmp.path, 'budget');
    const r = await cli('export', sim, '--out', out, '--as', 'adapter', '--max-error', '0.01', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ExportReport;
    const config = JSON.parse(await readFile(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.fan_in_fan_out, true);
    assert.equal(config.use_rslora, false);
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.task_type, 'CAUSAL_LM');
    assert.equal(config.base_model_name_or_path, SHIPPED);
    assert.deepEqual(config.target_modules, ['c_attn']);
    const ranks = report.modules.map((m) => m.rank);
    assert.ok(new Set(ranks).size > 1, `ranks ${ranks.join(', ')} should differ by module under a 1% budget`);
    await withSafetensors(join(out, 'adapter', 'adapter_model.safetensors'), async (st) => {
      for (const m of report.modules) {
        const r0 = peftPattern(config.rank_pattern as Record<string, number>, config.r as number, m.module);
        const alpha = peftPattern(config.alpha_pattern as Record<string, number>, config.lora_alpha as number, m.module);
        assert.equal(r0, m.rank, `${m.module}: PEFT would build rank ${r0}`);
        assert.equal(alpha / r0, 1, `${m.module}: scaling alpha/r must be 1`);
        assert.deepEqual(st.tensors.get(`base_model.model.${m.module}.lora_A.weight`)?.shape, [m.rank, m.in]);
        assert.deepEqual(st.tensors.get(`base_model.model.${m.module}.lora_B.weight`)?.shape, [m.out, m.rank]);
        assert.ok(m.truncationError <= 0.01);
      }
      assert.equal(st.tensors.size, 2 * report.modules.length);
    });
  });

  test('a FedIT run exports its global adapter the same way (no base steps)', async () => {
    const out = join(tmp.path, 'fedit');
    const r = await cli('export', sim, '--method', 'fedit', '--out', out, '--as', 'adapter');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(await readFile(join(out, 'export-report.json'), 'utf8')) as ExportReport;
    assert.equal(report.source.baseSteps, 0);
    for (const m of report.modules) assert.ok(m.exactRank <= 8);
    const feditGlobal = join(sim, 'adapters', 'fedit', 'round-003', 'global');
    const expected = await evalLoss('--model', SHIPPED, '--adapter', feditGlobal);
    assert.ok(Math.abs(await evalLoss('--model', SHIPPED, '--adapter', join(out, 'adapter')) - expected) <= 1e-5);
  });

  test('--residual-rank (the best inexact variant): the downlink is rank k, the share dropped is reported per round, and the export is the model as federated', async () => {
    const rr = join(tmp.path, 'rr');
    const r = await run(['simulate', '--seeds', '1', '--methods', 'fedex', '--rounds', '2', '--local-steps', '4', '--eval-examples', '24', '--out', rr, '--save-adapters', '--residual-rank', '4']);
    assert.equal(r.code, 0, r.stderr);
    const events = (await readFile(join(rr, 'runs', 'fedex', 'events.jsonl'), 'utf8')).trim().split('\n').map((l) =>
      JSON.parse(l) as { type: string; modules?: { residualInnerDim: number; residualTruncation?: { rank: number; exactRank: number; relativeError: number } }[] }
    );
    const closed = events.filter((e) => e.type === 'round_closed');
    assert.equal(closed.length, 2);
    for (const e of closed) {
      for (const m of e.modules!) {
        assert.equal(m.residualInnerDim, 4);
        assert.equal(m.residualTruncation!.rank, 4);
        assert.ok(m.residualTruncation!.relativeError > 0 && m.residualTruncation!.relativeError < 1);
      }
    }
    assert.match(r.stdout + r.stderr, /fedex round 1: residual truncated to rank 4, up to \S+ of a module's ‖ΔR‖ dropped/);
    const simReport = JSON.parse(await readFile(join(rr, 'report.json'), 'utf8')) as { methods: { method: string; rounds: { round: number; residualTruncation?: { rank: number; maxRelativeError: number } }[] }[] };
    const fedexRounds = simReport.methods.find((m) => m.method === 'fedex')!.rounds.filter((x) => x.round > 0);
    assert.equal(fedexRounds.length, 2);
    for (const x of fedexRounds) assert.ok(x.residualTruncation!.rank === 4 && x.residualTruncation!.maxRelativeError > 0);
    assert.match(await readFile(join(rr, 'report.html'), 'utf8'), /residual dropped \(rank\)[\s\S]*\(4\)/);
    const out = join(tmp.path, 'rrx');
    assert.equal((await run(['export', rr, '--out', out, '--as', 'adapter'])).code, 0);
    const report = JSON.parse(await readFile(join(out, 'export-report.json'), 'utf8')) as ExportReport;
    for (const m of report.modules) assert.equal(m.innerDim, 2 * 4 + 8);
    const last = join(rr, 'adapters', 'fedex', 'round-002');
    const federated = await evalLoss('--model', join(last, 'base'), '--adapter', join(last, 'global'));
    assert.ok(Math.abs(await evalLoss('--model', SHIPPED, '--adapter', join(out, 'adapter')) - federated) <= 1e-5);
  });

  test('bad sources and options are refused naming what is wrong', async () => {
    const notRun = await cli('export', join(tmp.path), '--out', join(tmp.path, 'x'));
    assert.notEqual(notRun.code, 0);
    assert.match(notRun.stderr, /is not a federation run: it has no state\.json/);
    const noMethod = await cli('export', sim, '--method', 'ffa', '--out', join(tmp.path, 'y'));
    assert.match(noMethod.stderr, /has no ffa run \(it has fedex, fedit\)/);
    const wrongBase = await cli('export', sim, '--out', join(tmp.path, 'z'), '--base', join(sim, 'adapters', 'fedex', 'round-003', 'base'));
    assert.match(wrongBase.stderr, /has content hash .* started from .*; give the original base with --base/);
    const exists = await cli('export', sim, '--out', join(tmp.path, 'both'), '--as', 'adapter');
    assert.match(exists.stderr, /already exists; pass --force/);
  });

  test('a re-factorization that does not reproduce the update is refused by the row check, and nothing is written', async () => {
    // Fault injection at the products seam: the TypeScript Gemm, with every product off by 1e-3 relative.
    const skewed: GemmBackend = {
      name: 'skewed',
      async gemm(r) {
        typeScriptGemm(r);
        for (let i = 0; i < r.out.length; i++) r.out[i] *= 1 + 1e-3 * ((i % 3) - 1);
      },
    };
    const out = join(tmp.path, 'skewed');

    await assert.rejects(exportFederation({ source: join(sim, 'runs', 'fedex'), out, as: 'adapter', gemm: skewed }),
      (err: Error & { code?: string }) => err.code === 'EXPORT_CHECK' && /differs from the exact one by .* nothing was written/.test(err.message));
    await assert.rejects(stat(out), { code: 'ENOENT' });
  });
});
