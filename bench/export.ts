/**
 * Export benchmark (issue 14, docs/benchmarks.md "Export"): what `fedex export` does per module,
 * re-factoring a federation's total update ΔW = Σ_t s·P_t·Q_t + s·B̄·Ā into one thin B·A
 * (core/lowRank.ts), against a dense SVD of the same ΔW in the same run.
 *
 * Per module (Llama-7B shapes: 4096×4096 q_proj / v_proj, optionally one 11008×4096 up_proj), 10
 * rounds × 3 clients at r = 16: m = 10·48 + 16 = 496. Each re-factorization runs in its own Node
 * process (bench/exportCase.ts: build the terms as FedEx does, time ONE call, the RSS it adds): as
 * `fedex export` runs it (refactorLowRankWith on onnxruntime's float64 Gemm) and with the products
 * in TypeScript (refactorLowRank); then one Python process (bench/torch/svd.py) forms ΔW densely from
 * the same float32 factors, in float32 and in float64, and times torch.linalg.svd alone (LAPACK
 * gesdd; numpy.linalg.svd, also gesdd, where PyTorch cannot be loaded: the table says which). The
 * refactor's leading singular values must match the float64 SVD's to 1e-6 (relative). The first
 * module is also profiled (products timed, the JavaScript between them from a CPU profile), except
 * with --smoke.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow } from './aggregation.js';
import type { ExportCaseArgs, ExportCaseResult, ExportProfileResult, RefactorImpl } from './exportCase.js';

export type SvdChoice = 'auto' | 'torch' | 'numpy';

export interface ExportBenchOptions {
  readonly smoke: boolean;
  /** Threads of the SVD (PyTorch, OpenBLAS) and of onnxruntime's Gemm in the export path; the TypeScript path has one. */
  readonly threads: number;
  /** How many 4096×4096 attention modules (q_proj, v_proj of layers 0, 1, …). */
  readonly modules: number;
  /** Also one 11008×4096 MLP module (up_proj). */
  readonly mlp: boolean;
  readonly svd: SvdChoice;
  readonly workDir: string;
  readonly log: (line: string) => void;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const PYTHON = '/usr/bin/python3';
/** Where bench/torch/fetch-debian.sh unpacks Debian's PyTorch without root. */
const LOCAL_TORCH = resolve(here, 'results', 'cache', 'torch', 'root');
const SIGMA_TOLERANCE = 1e-6;

interface ModuleSpec {
  readonly name: string;
  readonly shape: string;
  readonly out: number;
  readonly in: number;
}

interface SvdRun {
  svd_s: number;
  form_s: number;
  peak_rss_mib: number;
  top: number[];
  rank: number;
}

interface SvdResult {
  lib: 'torch' | 'numpy';
  numpy: string;
  torch?: string;
  threads?: number;
  lapack: string[];
  runs: Record<'float32' | 'float64', SvdRun>;
}

interface Python {
  readonly lib: 'torch' | 'numpy';
  readonly env: NodeJS.ProcessEnv;
  readonly where: string;
}

/** PyTorch from the system, else Debian's unpacked into bench/results/cache, else numpy (or why none). */
function findPython(choice: SvdChoice, threads: number): Python | string {
  const threadEnv = { OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  const system = { ...process.env, ...threadEnv };
  const works = (code: string, env: NodeJS.ProcessEnv): boolean => spawnSync(PYTHON, ['-c', code], { env, encoding: 'utf8' }).status === 0;
  if (choice !== 'numpy') {
    if (works('import torch', system)) return { lib: 'torch', env: system, where: 'system' };
    if (existsSync(LOCAL_TORCH)) {
      const r = LOCAL_TORCH;
      const local = {
        ...system,
        PYTHONPATH: `${r}/usr/lib/python3/dist-packages`,
        LD_LIBRARY_PATH: [`${r}/usr/lib/x86_64-linux-gnu/openblas-pthread`, `${r}/usr/lib/x86_64-linux-gnu`, `${r}/lib/x86_64-linux-gnu`, `${r}/usr/lib`, process.env.LD_LIBRARY_PATH ?? ''].filter((s) => s !== '').join(':'),
      };
      if (works('import torch', local)) return { lib: 'torch', env: local, where: 'bench/results/cache/torch (Debian python3-torch unpacked by bench/torch/fetch-debian.sh)' };
    }
    if (choice === 'torch') return 'PyTorch not found (bash bench/setup.sh as root, or bash bench/torch/fetch-debian.sh)';
  }
  if (works('import numpy', system)) return { lib: 'numpy', env: system, where: 'system' };
  return `neither PyTorch nor numpy importable by ${PYTHON}`;
}

function runNode(args: ExportCaseArgs, extraFlags: string[]): string {
  const r = spawnSync(process.execPath, ['--expose-gc', ...extraFlags, '--import', 'tsx', join(here, 'exportCase.ts'), JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`export bench case ${args.out}×${args.in} failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}

function runSvd(py: Python, args: Record<string, unknown>): SvdResult | string {
  const r = spawnSync(PYTHON, [join(here, 'torch', 'svd.py'), JSON.stringify({ ...args, lib: py.lib })], { encoding: 'utf8', env: py.env, maxBuffer: 1 << 24 });
  if (r.status !== 0) return `dense SVD failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as SvdResult;
}

/** The BLAS/LAPACK library as a short name: OpenBLAS 0.3.21 (pthread), reference LAPACK, … */
function lapackName(paths: readonly string[]): string {
  const ob = paths.find((p) => /libopenblas/i.test(p)) ?? paths.find((p) => /openblas/i.test(p));
  if (ob !== undefined) {
    const v = /r(\d+\.\d+\.\d+)/.exec(ob)?.[1] ?? /openblas[^/]*?(\d+\.\d+\.\d+)/i.exec(ob)?.[1];
    return `OpenBLAS${v !== undefined ? ` ${v}` : ''}${/pthread/.test(ob) ? ' pthread' : ''}`;
  }
  if (paths.some((p) => /mkl/i.test(p))) return 'MKL';
  // Debian's reference LAPACK/BLAS (libblas3, liblapack3) is single-threaded.
  if (paths.some((p) => /\/lapack\/liblapack/.test(p))) return 'reference LAPACK, 1 thread';
  if (paths.some((p) => /lapack/.test(p))) return `LAPACK ${paths.find((p) => /lapack/.test(p))}`;
  return 'LAPACK ?';
}

function lapackLabel(s: SvdResult, threads: number): string {
  const name = lapackName(s.lapack);
  return name.endsWith('1 thread') ? name : `${name}, ${s.threads ?? threads} threads`;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function maxRelDiff(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.abs(b[i]));
  return worst;
}

function modulesFor(o: ExportBenchOptions): ModuleSpec[] {
  if (o.smoke) return [{ name: 'layers.0.self_attn.q_proj', shape: '256×256', out: 256, in: 256 }];
  const mods: ModuleSpec[] = [];
  for (let i = 0; i < o.modules; i++) {
    const proj = i % 2 === 0 ? 'q_proj' : 'v_proj';
    mods.push({ name: `layers.${Math.floor(i / 2)}.self_attn.${proj}`, shape: '4096×4096', out: 4096, in: 4096 });
  }
  if (o.mlp) mods.push({ name: 'layers.0.mlp.up_proj', shape: '11008×4096', out: 11008, in: 4096 });
  return mods;
}

interface Measured {
  readonly spec: ModuleSpec;
  readonly ort: ExportCaseResult;
  readonly ts: ExportCaseResult;
  readonly svd: SvdResult | string;
}

const IMPL_LABEL = (threads: number): Record<RefactorImpl, string> => ({
  ort: `fedex export: refactorLowRankWith, onnxruntime float64 Gemm (${threads} threads)`,
  ts: 'refactorLowRank, products in TypeScript (1 thread)',
});

/** Runs the export suite; returns rows for the table. */
export async function exportBench(o: ExportBenchOptions): Promise<BenchRow[]> {
  const rounds = 10;
  const clients = 3;
  const r = o.smoke ? 4 : 16;
  const alpha = 2 * r;
  const modules = modulesFor(o);
  const py = findPython(o.svd, o.threads);
  o.log(`export: ${modules.length} module(s) (${modules.map((m) => m.name).join(', ')}), ${rounds} rounds × ${clients} clients, r=${r}; dense SVD: ${typeof py === 'string' ? py : `${py.lib} (${py.where})`}`);
  const dir = join(o.workDir, 'export');
  await mkdir(dir, { recursive: true });
  const measured: Measured[] = [];
  const profiles: { spec: ModuleSpec; impl: RefactorImpl; result: ExportProfileResult }[] = [];
  try {
    for (const [i, spec] of modules.entries()) {
      const args: ExportCaseArgs = { impl: 'ort', out: spec.out, in: spec.in, rounds, clients, r, alpha, seed: 1000 + i, threads: o.threads, dir, write: true, profile: false };
      const ort = JSON.parse(runNode(args, [])) as ExportCaseResult;
      const ts = JSON.parse(runNode({ ...args, impl: 'ts', write: false }, [])) as ExportCaseResult;
      o.log(
        `export: ${spec.name} ${spec.shape} m=${ort.m} (core ${ort.coreDim}): refactor ${(ort.ms / 1000).toFixed(2)} s (CPU ${(ort.cpuMs / 1000).toFixed(2)} s) on onnxruntime (peak RSS +${ort.peakRssDeltaMiB.toFixed(0)} MiB), ${
          (ts.ms / 1000).toFixed(2)
        } s in TypeScript (+${ts.peakRssDeltaMiB.toFixed(0)} MiB); exact rank ${ort.exactRank}`,
      );
      const tsDiff = maxRelDiff(ts.top, ort.top);
      if (!(tsDiff <= 1e-12)) throw new Error(`export bench: ${spec.name}: the two refactor paths' singular values differ by ${tsDiff.toExponential(2)} (relative)`);
      const svd = typeof py === 'string' ?
        `no dense SVD: ${py}`
        : runSvd(py, { p: join(dir, 'p.f32'), q: join(dir, 'q.f32'), scales: join(dir, 'scales.f64'), out: spec.out, in: spec.in, m: ort.m, threads: o.threads, top: 8, dtypes: ['float32', 'float64'] });
      if (typeof svd === 'string') o.log(`export: ${svd}`);
      else {
        for (const dt of ['float32', 'float64'] as const) {
          const run = svd.runs[dt];
          o.log(
            `export:   ${svd.lib} svd ${dt}: ${run.svd_s.toFixed(2)} s (${(run.svd_s * 1000 / ort.ms).toFixed(2)}× the onnxruntime refactor, ${(run.svd_s * 1000 / ts.ms).toFixed(2)}× the TypeScript one), peak RSS +${
              run.peak_rss_mib.toFixed(0)
            } MiB, σ1..8 max rel diff ${maxRelDiff(ort.top, run.top).toExponential(1)}, rank ${run.rank}`,
          );
        }
        const diff = maxRelDiff(ort.top, svd.runs.float64.top);
        if (!(diff <= SIGMA_TOLERANCE)) throw new Error(`export bench: ${spec.name}: the refactor's leading singular values differ from the float64 SVD's by ${diff.toExponential(2)} (relative), more than ${SIGMA_TOLERANCE}`);
      }
      measured.push({ spec, ort, ts, svd });
      if (i === 0 && !o.smoke) {
        for (const impl of ['ort', 'ts'] as const) {
          const result = JSON.parse(runNode({ ...args, impl, write: false, profile: true }, ['--no-turbo-inlining'])) as ExportProfileResult;
          profiles.push({ spec, impl, result });
          o.log(`export: profiled ${impl} ${spec.name}: ${(result.ms / 1000).toFixed(2)} s: ${result.phases.map((p) => `${p.phase} ${(p.ms / 1000).toFixed(2)} s`).join('; ')}`);
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const rows: BenchRow[] = [];
  const labels = IMPL_LABEL(o.threads);
  const shapes = [...new Set(measured.map((m) => m.spec.shape))];
  for (const shape of shapes) {
    const group = measured.filter((m) => m.spec.shape === shape);
    const names = [...new Set(group.map((g) => g.spec.name.split('.').pop()))].join(', ');
    const label = `${shape} ${names} × ${group.length}, m=${group[0].ort.m}`;
    for (const impl of ['ort', 'ts'] as const) {
      const t = group.map((g) => g[impl].ms);
      rows.push({
        suite: 'export',
        case: label,
        impl: labels[impl],
        medianMs: median(t),
        minMs: Math.min(...t),
        peakRssMiB: Math.max(...group.map((g) => g[impl].peakRssDeltaMiB)),
        note: impl === 'ort'
          ? `exact rank ${[...new Set(group.map((g) => g.ort.exactRank))].join('/')}, core m′ ${[...new Set(group.map((g) => g.ort.coreDim))].join('/')}, ‖ΔW − B·A‖/‖ΔW‖ ≤ ${
            Math.max(...group.map((g) => g.ort.relativeError)).toExponential(1)
          }; CPU ${(median(group.map((g) => g.ort.cpuMs)) / 1000).toFixed(2)} s (median, both threads); peak RSS: growth during the call`
          : `same result (σ to 1e-12); CPU ${(median(group.map((g) => g.ts.cpuMs)) / 1000).toFixed(2)} s (median)`,
      });
    }
    const svds = group.map((g) => g.svd).filter((s): s is SvdResult => typeof s !== 'string');
    if (svds.length === 0) {
      rows.push({ suite: 'export', case: label, impl: 'dense SVD', medianMs: NaN, minMs: NaN, peakRssMiB: null, note: String(group[0].svd) });
      continue;
    }
    const s0 = svds[0];
    const libLabel = s0.lib === 'torch' ? `PyTorch ${s0.torch} torch.linalg.svd` : `numpy ${s0.numpy} numpy.linalg.svd`;
    const tsMedian = median(group.map((g) => g.ts.ms));
    for (const dt of ['float32', 'float64'] as const) {
      const t = svds.map((s) => s.runs[dt].svd_s * 1000);
      const diffs = group.filter((g) => typeof g.svd !== 'string').map((g) => maxRelDiff(g.ort.top, (g.svd as SvdResult).runs[dt].top));
      rows.push({
        suite: 'export',
        case: label,
        impl: `${libLabel} ${dt} (gesdd, ${lapackLabel(s0, o.threads)})`,
        medianMs: median(t),
        minMs: Math.min(...t),
        peakRssMiB: Math.max(...svds.map((s) => s.runs[dt].peak_rss_mib)),
        note: `${(median(t) / tsMedian).toFixed(2)}× the TypeScript refactor; σ1..8 vs refactor ≤ ${Math.max(...diffs).toExponential(1)} rel; rank ${[...new Set(svds.map((s) => s.runs[dt].rank))].join('/')}; forming ΔW ${
          median(svds.map((s) => s.runs[dt].form_s)).toFixed(2)
        } s (not timed)`,
      });
    }
  }
  for (const p of profiles) {
    const label = `phases of one ${p.spec.shape} refactor, ${p.impl === 'ort' ? 'onnxruntime' : 'TypeScript'} products (profiled, no inlining)`;
    rows.push({ suite: 'export', case: label, impl: 'total (profiled call)', medianMs: p.result.ms, minMs: p.result.ms, peakRssMiB: null });
    for (const ph of p.result.phases) rows.push({ suite: 'export', case: label, impl: ph.phase, medianMs: ph.ms, minMs: ph.ms, peakRssMiB: null });
  }
  if (typeof py !== 'string' && py.lib === 'numpy') o.log('export: the dense SVD above is numpy.linalg.svd (LAPACK gesdd), not PyTorch');
  return rows;
}
