/**
 * One module of the export benchmark, in its own process (its own peak RSS; run with --expose-gc).
 * argv[2] is a JSON ExportCaseArgs; prints one JSON ExportCaseResult (or ExportProfileResult) line.
 *
 * Builds the module's total update the way a FedEx federation leaves it: `rounds` rounds of
 * `clients` clients at rank r, each round's residual factored as FedEx does (core/residual.ts,
 * stacked: P = [w_i B_i] out × k·r, Q = [A_i − Ā] k·r × in), then the global adapter (B̄, Ā); every
 * term scaled by alpha / r. Then ONE re-factorization, after a small warm-up one (JIT, sessions):
 *
 * - `ort`: what `fedex export` runs (src/cli/commands/export.ts): `refactorLowRankWith` on the
 *   onnxruntime float64 Gemm backend (src/runtime/kernels/gemm64.ts, `threads` intra-op threads);
 * - `ts`: `refactorLowRank`, the same algorithm with its products in TypeScript (one thread).
 *
 * Reports the call's time and its RSS high-water mark (reset just before it) over the RSS just
 * before it. With `write`, then writes the stacked factors for the dense-SVD reference
 * (bench/torch/svd.py): P (out × m, float32, unscaled), Q (m × in, float32) and the m column scales
 * (float64). With `profile`, instead times every product (wall clock, by kind) and the JavaScript
 * around them (V8 CPU profile; run with --no-turbo-inlining so that every function keeps its frame).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { weightedAverage } from '../src/core/average.js';
import type { LoraFactors } from '../src/core/lora.js';
import { refactorLowRank, refactorLowRankWith, typeScriptGemm, type GemmBackend, type GemmRequest, type Refactored, type UpdateTerm } from '../src/core/lowRank.js';
import { createRng, kaimingUniform, type Rng } from '../src/core/random.js';
import { factorResidual } from '../src/core/residual.js';
import type { Matrix } from '../src/core/tensor.js';
import { createOrtGemmBackend } from '../src/runtime/kernels/gemm64.js';

export type RefactorImpl = 'ort' | 'ts';

export interface ExportCaseArgs {
  readonly impl: RefactorImpl;
  readonly out: number;
  readonly in: number;
  readonly rounds: number;
  readonly clients: number;
  readonly r: number;
  readonly alpha: number;
  readonly seed: number;
  /** onnxruntime intra-op threads (`ort`). */
  readonly threads: number;
  /** Folder for the stacked factors (p.f32, q.f32, scales.f64), written when `write`. */
  readonly dir: string;
  readonly write: boolean;
  /** Profile the call instead (time per phase) and write nothing. */
  readonly profile: boolean;
}

export interface ExportPhase {
  readonly phase: string;
  readonly ms: number;
}

export interface ExportCaseResult {
  readonly ms: number;
  /** CPU time of the process during the call, every thread (onnxruntime's included). */
  readonly cpuMs: number;
  /** High-water mark of RSS during the call minus RSS just before it. */
  readonly peakRssDeltaMiB: number;
  /** Whether the high-water mark was reset before the call (else it is the process's since its start). */
  readonly peakReset: boolean;
  readonly rssBeforeMiB: number;
  readonly m: number;
  /** Inner size of the largest stack factored (m less the near-dependent rows taken out). */
  readonly coreDim: number;
  readonly exactRank: number;
  readonly norm: number;
  /** ‖ΔW − B·A‖_F / ‖ΔW‖_F of the exact-rank result (what the export reports for the module). */
  readonly relativeError: number;
  readonly top: number[];
  readonly buildMs: number;
}

export interface ExportProfileResult {
  /** The profiled call (the profiler and the lack of inlining make it slower than the timed one). */
  readonly ms: number;
  readonly phases: ExportPhase[];
}

const CLIENT_WEIGHTS = [0.5, 0.3, 0.2];

function gaussianStep(m: Matrix<Float32Array>, rng: Rng, std: number): Matrix<Float32Array> {
  const d = new Float32Array(m.data.length);
  for (let i = 0; i < d.length; i++) d[i] = m.data[i] + std * rng.gaussian();
  return { shape: m.shape, data: d };
}

/**
 * The terms `fedex export` reads for one module: each round's FedEx residual, then the global adapter.
 * Clients start each round from the global (B̄, Ā) and move it a little: A by 0.1/√in per entry
 * (about a tenth of its Kaiming bound), B by 1e-3 (it starts at zero, as PEFT's does).
 */
export function federationTerms(out: number, inF: number, rounds: number, clients: number, r: number, alpha: number, seed: number): UpdateTerm[] {
  const rng = createRng(seed);
  const raw = Array.from({ length: clients }, (_, i) => CLIENT_WEIGHTS[i % CLIENT_WEIGHTS.length]);
  const total = raw.reduce((s, x) => s + x, 0);
  const weights = raw.map((x) => x / total);
  const scale = alpha / r;
  let a = kaimingUniform(r, inF, rng);
  let b: Matrix<Float32Array> = { shape: [out, r], data: new Float32Array(out * r) };
  const terms: UpdateTerm[] = [];
  for (let t = 0; t < rounds; t++) {
    const local: LoraFactors[] = Array.from({ length: clients }, () => ({ a: gaussianStep(a, rng, 0.1 / Math.sqrt(inF)), b: gaussianStep(b, rng, 1e-3) }));
    const abar = weightedAverage(local.map((c) => c.a), weights);
    const bbar = weightedAverage(local.map((c) => c.b), weights);
    const res = factorResidual(local, weights, abar, 'stacked');
    terms.push({ kind: 'factored', p: res.p, q: res.q, scale });
    a = abar;
    b = bbar;
  }
  terms.push({ kind: 'factored', p: b, q: a, scale });
  return terms;
}

/** P (out × m, unscaled), Q (m × in) and the m column scales, as lowRank.ts stacks the terms. */
async function writeStacked(terms: readonly UpdateTerm[], out: number, inF: number, dir: string): Promise<number> {
  const factored = terms.map((t) => {
    if (t.kind !== 'factored') throw new Error('export bench: dense terms are not generated');
    return t;
  });
  const m = factored.reduce((s, t) => s + t.p.shape[1], 0);
  const p = new Float32Array(out * m);
  const q = new Float32Array(m * inF);
  const scales = new Float64Array(m);
  let col = 0;
  for (const t of factored) {
    const k = t.p.shape[1];
    for (let o = 0; o < out; o++) p.set(t.p.data.subarray(o * k, (o + 1) * k), o * m + col);
    q.set(t.q.data, col * inF);
    scales.fill(t.scale, col, col + k);
    col += k;
  }
  await writeFile(join(dir, 'p.f32'), new Uint8Array(p.buffer));
  await writeFile(join(dir, 'q.f32'), new Uint8Array(q.buffer));
  await writeFile(join(dir, 'scales.f64'), new Uint8Array(scales.buffer));
  return m;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string };
  children?: number[];
}

/** JavaScript phases, by the innermost function of core/lowRank.ts on a sample's stack. */
const JS_PHASES: Record<string, string> = {
  multiplyNT: 'JS: products in TypeScript (typeScriptGemm)',
  transposeRows: 'JS: products in TypeScript (typeScriptGemm)',
  typeScriptGemm: 'JS: products in TypeScript (typeScriptGemm)',
  reflectColumns: 'JS: QR leaves (reflectors within a leaf of 16 columns)',
  leafQR: 'JS: QR leaves (reflectors within a leaf of 16 columns)',
  panelQR: 'JS: QR panels (recursion, T assembly)',
  blockedQR: 'JS: QR panels (recursion, T assembly)',
  triangularFactor: 'JS: compact-WY T factors (QR and eigenvectors)',
  upperTimes: 'JS: T·W (QR updates, A = Q_q·V_k)',
  applyBlockTransposed: 'JS: T·W (QR updates, A = Q_q·V_k)',
  applyQ: 'JS: T·W (QR updates, A = Q_q·V_k)',
  tridiagonalQL: 'JS: eigen, implicit QL on the tridiagonal',
  rotateColumns: 'JS: eigen, QL rotations applied to the m × m vectors',
  tridiagonalize: 'JS: eigen, Householder tridiagonalization of CᵀC',
  eigenProducts: 'JS: eigen, back-transformation and sorting',
  transposeSquare: 'JS: eigen, back-transformation and sorting',
  symmetricEigenvalues: 'JS: eigen, Householder tridiagonalization of CᵀC',
  omittedSpectrum: 'JS: spectrum of the rounding part F (Grams)',
  gramCore: 'JS: core from the Grams (R·PᵀP·Rᵀ)',
  qrCore: 'JS: core from a QR of P (C = R_p·R_qᵀ)',
  choleskySide: 'JS: Cholesky of Q·Qᵀ (R)',
  cholesky: 'JS: Cholesky of Q·Qᵀ (R)',
  wellConditionedInverse: 'JS: R_q⁻¹ (A = Z·Q)',
  stack: 'JS: stack the terms (float64)',
  transposeTerm: 'JS: transposes',
  transpose: 'JS: transposes',
  transposeAny: 'JS: transposes',
  refactorProducts: 'JS: σ, sorting, balance (refactorProducts)',
  factorStack: 'JS: σ, sorting, balance (refactorProducts)',
  symmetrize: 'JS: σ, sorting, balance (refactorProducts)',
  merged: 'JS: σ, sorting, balance (refactorProducts)',
  nearNullColumns: 'JS: compaction (near-dependent rows of each term)',
  compactStack: 'JS: compaction (near-dependent rows of each term)',
  pivotedEchelon: 'JS: compaction (near-dependent rows of each term)',
  permuteColumns: 'JS: compaction (near-dependent rows of each term)',
};
const ENTRY = new Set(['refactorLowRank', 'refactorLowRankWith', 'runSync']);
/** The benchmark's product wrapper: samples under it are products, timed by the wall clock instead. */
const WRAPPER = 'timedProduct';

/** Milliseconds per JavaScript phase from a V8 CPU profile (samples inside the product wrapper and idle time left out). */
function jsPhases(profile: { nodes: ProfileNode[]; samples?: number[]; timeDeltas?: number[] }): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const totals = new Map<string, number>();
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i + 1] is the time from sample i to the next one: charge it to sample i.
    const ms = (deltas[i + 1] ?? 0) / 1000;
    if (ms === 0) continue;
    if (byId.get(samples[i])!.callFrame.functionName === '(garbage collector)') {
      totals.set('JS: garbage collector', (totals.get('JS: garbage collector') ?? 0) + ms);
      continue;
    }
    let phase: string | null = null;
    let inCall = false;
    let inWrapper = false;
    for (let cur: number | undefined = samples[i]; cur !== undefined; cur = parent.get(cur)) {
      const fn = byId.get(cur)!.callFrame.functionName;
      if (fn === WRAPPER) inWrapper = true;
      if (ENTRY.has(fn)) {
        inCall = true;
        break;
      }
      phase ??= JS_PHASES[fn] ?? null;
    }
    if (!inCall || inWrapper) continue;
    const key = phase ?? 'JS: other';
    totals.set(key, (totals.get(key) ?? 0) + ms);
  }
  return totals;
}

/** The kind of a product, from its shape: m is the inner size of the stacked factors, out × in the module's. */
function productKind(r: GemmRequest, m: number, out: number, inF: number): string {
  if (Math.max(r.m, r.n, r.k) <= m) return 'products of m × m size (core C, CᵀC, eigenvectors, C·V, X)';
  if (r.transA && r.transB && r.m === out) return 'B = P·X';
  if (!r.transA && !r.transB && r.n === inF && r.k > m / 4) return 'A = Z·Q (Z = diag(√σ)·V_kᵀ·R⁻ᵀ)';
  if (r.transB && !r.transA && r.m === r.n && (r.k === out || r.k === inF) && r.a === r.b) return r.m > m / 2 ? 'Grams PᵀP and Q·Qᵀ of the stack' : "Grams of a term or of F (compaction, F's spectrum)";
  if (r.k <= m / 4 || r.m <= m / 4) return 'thin products (compaction: E = X_J + X_K·Mᵀ, Y_K −= Y_J·M; QR panels when taken)';
  return 'reflector products (QR of P and Qᵀ, A = Q_q·V_k)';
}

/** A backend that times every product (wall clock, by kind) around `inner`. */
function timingBackend(inner: (r: GemmRequest) => Promise<void> | void, m: number, out: number, inF: number, totals: Map<string, { ms: number; calls: number }>): GemmBackend {
  return {
    name: 'timed',
    gemm: async function timedProduct(r: GemmRequest): Promise<void> {
      const t = performance.now();
      await inner(r);
      const kind = productKind(r, m, out, inF);
      const e = totals.get(kind) ?? { ms: 0, calls: 0 };
      totals.set(kind, { ms: e.ms + performance.now() - t, calls: e.calls + 1 });
    },
  };
}

/**
 * Resets the kernel's RSS high-water mark to the current RSS (Linux ≥ 4.0: `5` to
 * /proc/self/clear_refs), so that the mark read after the call is the call's own. False where that
 * is not possible (the mark then covers the whole process).
 */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** The RSS high-water mark in bytes (VmHWM; getrusage's maxRSS where /proc is missing). */
function peakRss(): number {
  try {
    const kib = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kib !== undefined) return Number(kib) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

async function run(args: ExportCaseArgs): Promise<ExportCaseResult | ExportProfileResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const ort = args.impl === 'ort' ? createOrtGemmBackend({ intraOpThreads: args.threads }) : null;
  const refactor = (terms: readonly UpdateTerm[], out: number, inF: number): Promise<Refactored> | Refactored => ort !== null ? refactorLowRankWith(ort, terms, out, inF) : refactorLowRank(terms, out, inF);
  // Warm-up on a small module of the same structure: optimised code, onnxruntime sessions built.
  const n = Math.max(64, Math.min(512, Math.floor(Math.min(args.out, args.in) / 4)));
  await refactor(federationTerms(n, n, args.rounds, args.clients, Math.min(args.r, 4), args.alpha, args.seed + 1), n, n);
  let t = performance.now();
  const terms = federationTerms(args.out, args.in, args.rounds, args.clients, args.r, args.alpha, args.seed);
  const buildMs = performance.now() - t;
  gc?.();
  try {
    if (args.profile) {
      const m = terms.reduce((s, x) => s + (x.kind === 'factored' ? x.p.shape[1] : 0), 0);
      const products = new Map<string, { ms: number; calls: number }>();
      const backend = timingBackend(ort !== null ? (r) => ort.gemm(r) : typeScriptGemm, m, args.out, args.in, products);
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 1000 });
      await session.post('Profiler.start');
      t = performance.now();
      await refactorLowRankWith(backend, terms, args.out, args.in);
      const ms = performance.now() - t;
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      const where = ort !== null ? 'onnxruntime' : 'TypeScript';
      const phases: ExportPhase[] = [...products.entries()].map(([kind, e]) => ({ phase: `${where}: ${kind}, ${e.calls} calls`, ms: e.ms }));
      const js = jsPhases(profile as unknown as { nodes: ProfileNode[]; samples?: number[]; timeDeltas?: number[] });
      for (const [phase, pms] of [...js.entries()].sort((x, y) => y[1] - x[1])) phases.push({ phase, ms: pms });
      return { ms, phases };
    }
    const reset = resetPeakRss();
    const rssBefore = process.memoryUsage.rss();
    const cpu = process.cpuUsage();
    t = performance.now();
    const res = await refactor(terms, args.out, args.in);
    const ms = performance.now() - t;
    const cpuUsed = process.cpuUsage(cpu);
    const peak = peakRss();
    if (args.write) await writeStacked(terms, args.out, args.in, args.dir);
    return {
      ms,
      cpuMs: (cpuUsed.user + cpuUsed.system) / 1000,
      peakRssDeltaMiB: Math.max(0, peak - rssBefore) / 2 ** 20,
      peakReset: reset,
      rssBeforeMiB: rssBefore / 2 ** 20,
      m: res.innerDim,
      coreDim: res.coreDim,
      exactRank: res.exactRank,
      norm: res.norm,
      relativeError: res.relativeError,
      top: [...res.singularValues.subarray(0, 8)],
      buildMs,
    };
  } finally {
    await ort?.dispose?.();
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = JSON.parse(process.argv[2]) as ExportCaseArgs;
  process.stdout.write(`${JSON.stringify(await run(args))}\n`);
}
