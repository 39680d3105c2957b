/**
 * Aggregation benchmark (docs/math.md §3): one 4096×4096 module, r=16, k=3 — the project's fused path,
 * the paper's dense formulation in this project's code, and PyTorch (fused and dense) when
 * python3-torch is installed — and a whole Llama-7B-shaped set of modules from safetensors on disk.
 * Every case runs in its own process (its own peak RSS), all in the same run, side by side.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticAdapters, writeSyntheticCheckpoint } from '../src/model/checkpoints/synthetic.js';
import type { SyntheticModelSpec } from '../src/model/checkpoints/synthetic.js';
import type { CaseArgs, CaseResult } from './aggregationCase.js';
import { PYTHON, type BenchOptions } from './common.js';

export interface BenchRow {
  suite: string;
  case: string;
  impl: string;
  medianMs: number;
  minMs: number;
  peakRssMiB: number | null;
  note?: string;
}

const here = fileURLToPath(new URL('.', import.meta.url));

function runCase(args: CaseArgs): CaseResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'aggregationCase.ts'), JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`bench case ${args.kind} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as CaseResult;
}

interface TorchTiming {
  median_ms: number;
  min_ms: number;
}

interface TorchResult {
  torch: string;
  strategies: Record<'fedex' | 'fedit' | 'ffa' | 'flora' | 'fedsb', TorchTiming>;
  fused: { median_ms: number; min_ms: number };
  dense: { median_ms: number; min_ms: number };
  stored: { median_ms: number; min_ms: number };
  stored_measured: { median_ms: number; min_ms: number };
  peak_rss_mib?: number;
}

/** The environment PyTorch imports in: the system's, else Debian's unpacked by bench/torch/fetch-debian.sh; null when neither. */
function torchEnv(): NodeJS.ProcessEnv | null {
  if (spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0) return process.env;
  const root = join(here, 'results', 'cache', 'torch', 'root');
  if (!existsSync(root)) return null;
  const env = {
    ...process.env,
    PYTHONPATH: `${root}/usr/lib/python3/dist-packages`,
    LD_LIBRARY_PATH: [`${root}/usr/lib/x86_64-linux-gnu/openblas-pthread`, `${root}/usr/lib/x86_64-linux-gnu`, `${root}/lib/x86_64-linux-gnu`, `${root}/usr/lib`, process.env.LD_LIBRARY_PATH ?? ''].filter((s) => s !== '').join(':'),
  };
  return spawnSync(PYTHON, ['-c', 'import torch'], { env, encoding: 'utf8' }).status === 0 ? env : null;
}

function runTorch<T = TorchResult>(args: { out: number; in: number; k: number; r: number; reps: number; threads: number; strategies_only?: boolean }): T | string {
  const env = torchEnv();
  if (env === null) return 'PyTorch not installed (apt-get install python3-torch libopenblas0-pthread, or bench/setup.sh, or bench/torch/fetch-debian.sh)';
  const r = spawnSync(PYTHON, [join(here, 'torch', 'aggregate.py'), JSON.stringify(args)], { encoding: 'utf8', env });
  if (r.status !== 0) return `PyTorch run failed: ${r.stderr.split('\n').slice(-3).join(' ')}`;
  return JSON.parse(r.stdout.trim()) as T;
}

const STRATEGIES = ['fedex', 'fedit', 'ffa', 'flora', 'fedsb'] as const;

/**
 * Each strategy's round for one n×n module, r = 16, k = 3 and k = 10 (issue 16): the strategy's
 * aggregate plus its fused base update (aggregationCase.ts `strategy`), and the same math in PyTorch
 * in the same run (bench/torch/aggregate.py `strategies`).
 */
export function strategyRows(o: Pick<AggregationBenchOptions, 'smoke' | 'threads' | 'log'>, n: number): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const k of [3, 10]) {
    const mod = { out: n, in: n, k, r: 16, reps: o.smoke ? 3 : 15, threads: o.threads };
    const label = `${n}×${n} r=16 k=${k}, per strategy`;
    o.log(`aggregation: ${label}`);
    const torch = runTorch<{ torch: string; strategies: TorchResult['strategies'] }>({ ...mod, strategies_only: true });
    for (const method of STRATEGIES) {
      const c = runCase({ kind: 'strategy', method, ...mod });
      const inner = Number(c.extra?.inner ?? 0);
      rows.push({ suite: 'aggregation', case: label, impl: `${method} (aggregate + fused base update)`, medianMs: c.medianMs, minMs: c.minMs, peakRssMiB: c.peakRssMiB, note: inner > 0 ? `base update inner ${inner}` : 'base unchanged' });
      if (typeof torch === 'string') rows.push({ suite: 'aggregation', case: label, impl: `${method}, PyTorch`, medianMs: NaN, minMs: NaN, peakRssMiB: null, note: torch });
      else rows.push({ suite: 'aggregation', case: label, impl: `${method}, PyTorch ${torch.torch}`, medianMs: torch.strategies[method].median_ms, minMs: torch.strategies[method].min_ms, peakRssMiB: null });
    }
  }
  return rows;
}

export interface AggregationBenchOptions extends BenchOptions {
  /** Layers of the Llama-7B-shaped set (32 for the full model). */
  readonly llamaLayers: number;
}

/** Runs the aggregation suite; returns rows for the table. */
export async function aggregationBench(o: AggregationBenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const n = o.smoke ? 512 : 4096;
  const mod = { out: n, in: n, k: 3, r: 16, reps: o.smoke ? 3 : 15, threads: o.threads };
  const label = `${n}×${n} r=16 k=3`;
  o.log(`aggregation: one module ${label}`);
  const fused = runCase({ kind: 'fused', ...mod });
  rows.push({ suite: 'aggregation', case: label, impl: 'fedex fused (onnxruntime Gemm, in place)', medianMs: fused.medianMs, minMs: fused.minMs, peakRssMiB: fused.peakRssMiB });
  const storedLabel = `${n}×${n} r=16 k=3, stored bf16`;
  const stored = runCase({ kind: 'stored', ...mod });
  const dense = runCase({ kind: 'dense', ...mod });
  rows.push({ suite: 'aggregation', case: label, impl: 'paper dense (this project, onnxruntime MatMul)', medianMs: dense.medianMs, minMs: dense.minMs, peakRssMiB: dense.peakRssMiB });
  const torch = runTorch(mod);
  if (typeof torch === 'string') {
    rows.push({ suite: 'aggregation', case: label, impl: 'PyTorch', medianMs: NaN, minMs: NaN, peakRssMiB: null, note: torch });
  } else {
    rows.push({ suite: 'aggregation', case: label, impl: `PyTorch ${torch.torch} fused addmm_`, medianMs: torch.fused.median_ms, minMs: torch.fused.min_ms, peakRssMiB: torch.peak_rss_mib ?? null });
    rows.push({ suite: 'aggregation', case: label, impl: `PyTorch ${torch.torch} paper dense`, medianMs: torch.dense.median_ms, minMs: torch.dense.min_ms, peakRssMiB: null });
  }
  rows.push({ suite: 'aggregation', case: storedLabel, impl: 'fedex stored (onnxruntime graph: widen, Gemm, round, rounding report)', medianMs: stored.medianMs, minMs: stored.minMs, peakRssMiB: stored.peakRssMiB });
  if (typeof torch !== 'string') {
    rows.push({ suite: 'aggregation', case: storedLabel, impl: `PyTorch ${torch.torch} float(), addmm_, copy_ (no report)`, medianMs: torch.stored.median_ms, minMs: torch.stored.min_ms, peakRssMiB: null });
    rows.push({ suite: 'aggregation', case: storedLabel, impl: `PyTorch ${torch.torch} the same + the same rounding report`, medianMs: torch.stored_measured.median_ms, minMs: torch.stored_measured.min_ms, peakRssMiB: null });
  }

  rows.push(...strategyRows(o, n));

  // The whole Llama-7B-shaped set of adapted modules, streamed from safetensors on disk.
  const layers = o.smoke ? 1 : o.llamaLayers;
  const spec: SyntheticModelSpec = o.smoke
    ? { family: 'llama', layers, hidden: 512, heads: 8, intermediate: 1376, vocab: 32, dtype: 'BF16', onlyModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }
    : { family: 'llama', layers, hidden: 4096, heads: 32, intermediate: 11008, vocab: 32, dtype: 'BF16', onlyModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };
  const dir = join(o.workDir, `llama-${spec.hidden}-${layers}l`);
  const base = join(dir, 'base');
  const haveBase = await stat(join(base, 'model.safetensors')).then(() => true, () => false);
  if (!haveBase) {
    o.log(`aggregation: generating a Llama-shaped bf16 checkpoint (${layers} layers × q,k,v,o,gate,up,down, d=${spec.hidden}) in ${dir}`);
    await mkdir(dir, { recursive: true });
    await writeSyntheticCheckpoint(base, spec);
  }
  const adapters = await writeSyntheticAdapters(join(dir, 'adapters'), spec, { clients: 3, rank: 16, alpha: 32, targetModules: spec.onlyModules!, seed: 3, aDrift: 0.3, bStd: 0.01 });
  const size = (await stat(join(base, 'model.safetensors'))).size;
  o.log(`aggregation: whole set, ${(size / 2 ** 30).toFixed(2)} GiB bf16 on disk`);
  const model = runCase({ kind: 'model', ...mod, base, adapters, outDir: join(dir, 'out') });
  rows.push({
    suite: 'aggregation',
    case: `Llama-shaped set, ${layers}×7 modules, bf16 ${(size / 2 ** 30).toFixed(1)} GiB`,
    impl: 'fedex aggregate (stream, fused, exactness check)',
    medianMs: model.medianMs,
    minMs: model.minMs,
    peakRssMiB: model.peakRssMiB,
    note: `${model.extra?.modules} modules, exact=${String(model.extra?.exact)}, ${(size / model.medianMs / 1e6).toFixed(2)} GB/s of base read`,
  });
  await rm(join(dir, 'out'), { recursive: true, force: true });
  if (o.smoke) await rm(dir, { recursive: true, force: true });
  return rows;
}
