/**
 * One aggregation benchmark case, run in its own process so that its peak RSS is its own.
 * argv[2] is a JSON CaseArgs; prints one JSON CaseResult line on stdout.
 *
 * Cases:
 * - `fused`: the project's path — FedEx strategy (Ā, B̄, factored residual P·Q) + one fused
 *   onnxruntime Gemm per row block into W0, in place.
 * - `stored`: the same module stored as bf16, as `fedex aggregate` streams it — the FedEx strategy,
 *   then the stored-weight graph per row block (widen, Gemm, round to bf16, measure the rounding).
 * - `dense`: the paper's formulation in this project's code — every B_i·A_i formed densely
 *   (onnxruntime MatMul into a preallocated out×in buffer), summed, minus B̄·Ā, added to W0.
 * - `model`: `aggregateFolders` end to end on a checkpoint folder (streaming, exactness check).
 * - `strategy`: one strategy's whole round for the module (`method`: fedex, fedit, ffa, flora, fedsb) — its
 *   `aggregate` (no deviation metrics, as the coordinator runs it) and, when it changes the base, the
 *   fused onnxruntime update of W0 in place. FFA's clients share A.
 */
import { createFedEx } from '../src/core/strategies/fedex.js';
import { createStrategy } from '../src/core/strategies/registry.js';
import { applyBaseChange } from '../src/core/baseChange.js';
import type { StrategyName } from '../src/core/strategies/types.js';
import { createRng, kaimingUniform, randomMatrix } from '../src/core/random.js';
import { float32ToBfloat16 } from '../src/formats/halfFloat.js';
import { weightedAverage } from '../src/core/average.js';
import type { LoraFactors } from '../src/core/lora.js';
import { createOrtProductBackend } from '../src/runtime/kernels/factoredUpdate.js';
import { createStoredUpdateKernel } from '../src/runtime/kernels/storedUpdate.js';
import { createSession, ortTensor, runSession } from '../src/runtime/session.js';
import { encodeModel } from '../src/graph/onnx/model.js';
import { aggregateFolders } from '../src/federation/offline/aggregateFolders.js';

export interface CaseArgs {
  kind: 'fused' | 'stored' | 'dense' | 'model' | 'strategy';
  /** strategy case */
  method?: StrategyName;
  out: number;
  in: number;
  k: number;
  r: number;
  reps: number;
  threads: number;
  /** model case */
  base?: string;
  adapters?: string[];
  outDir?: string;
}

export interface CaseResult {
  kind: string;
  medianMs: number;
  minMs: number;
  reps: number;
  peakRssMiB: number;
  extra?: Record<string, number | string | boolean>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeIt(reps: number, fn: () => Promise<void>): Promise<{ medianMs: number; minMs: number }> {
  await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    ts.push(performance.now() - t);
  }
  return { medianMs: median(ts), minMs: Math.min(...ts) };
}

function clients(args: CaseArgs): LoraFactors[] {
  const rng = createRng(42);
  const a0 = kaimingUniform(args.r, args.in, rng);
  return Array.from({ length: args.k }, () => ({
    a: { shape: a0.shape, data: a0.data.map((x) => x + 0.3 * x * rng.gaussian()) },
    b: randomMatrix(args.out, args.r, rng, 0.01),
  }));
}

async function fusedCase(args: CaseArgs): Promise<CaseResult> {
  const spec = { name: 'model.layers.0.self_attn.q_proj', inFeatures: args.in, outFeatures: args.out, rank: args.r, alpha: 2 * args.r, useRslora: false, layout: 'linear' as const };
  const results = clients(args).map((factors, client) => ({ client, factors }));
  const w0 = randomMatrix(args.out, args.in, createRng(1), 0.02);
  const backend = createOrtProductBackend({ intraOpThreads: args.threads });
  const fedex = createFedEx({ deviationMetrics: false });
  const t = await timeIt(args.reps, async () => {
    const agg = fedex.aggregate(1, { spec, factors: null }, results, [])!;
    const u = agg.baseUpdate!;
    if (u.form !== 'factored') throw new Error('bench: FedEx under the mean gives a factored update');
    await backend.addScaledProduct(w0, u.layout, u.p, u.q, u.scale);
  });
  await backend.dispose();
  return { kind: 'fused', ...t, reps: args.reps, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
}

async function storedCase(args: CaseArgs): Promise<CaseResult> {
  const spec = { name: 'model.layers.0.self_attn.q_proj', inFeatures: args.in, outFeatures: args.out, rank: args.r, alpha: 2 * args.r, useRslora: false, layout: 'linear' as const };
  const results = clients(args).map((factors, client) => ({ client, factors }));
  const stored = new Uint8Array(float32ToBfloat16(randomMatrix(args.out, args.in, createRng(1), 0.02).data).buffer);
  const written = new Uint8Array(stored.byteLength);
  const kernel = createStoredUpdateKernel({ intraOpThreads: args.threads });
  const fedex = createFedEx({ deviationMetrics: false });
  let maxAbs = 0;
  const t = await timeIt(args.reps, async () => {
    const agg = fedex.aggregate(1, { spec, factors: null }, results, [])!;
    if (agg.baseUpdate !== null && agg.baseUpdate.form !== 'factored') throw new Error('bench: FedEx under the mean gives a factored update');
    let at = 0;
    const r = await kernel.run({ shape: [args.out, args.in], inDtype: 'BF16', outDtype: 'BF16', update: agg.baseUpdate, sampleRows: [] }, { read: async (start, into) => into.set(stored.subarray(start, start + into.byteLength)),
      write: async (bytes) => {
        written.set(bytes, at);
        at += bytes.byteLength;
      } });
    maxAbs = r.downcast!.maxAbsError;
  });
  await kernel.dispose();
  return { kind: 'stored', ...t, reps: args.reps, peakRssMiB: process.resourceUsage().maxRSS / 1024, extra: { maxAbsRounding: maxAbs } };
}

async function denseCase(args: CaseArgs): Promise<CaseResult> {
  const cs = clients(args);
  const w = new Float64Array(args.k).fill(1 / args.k);
  const s = 2;
  const w0 = randomMatrix(args.out, args.in, createRng(1), 0.02);
  const mm = await createSession(
    encodeModel({
      graph: { name: 'mm', nodes: [{ opType: 'MatMul', inputs: ['X', 'Y'], outputs: ['Z'] }], inputs: [{ name: 'X', elemType: 'float32', shape: ['m', 'k'] }, { name: 'Y', elemType: 'float32', shape: ['k', 'n'] }],
        outputs: [{ name: 'Z', elemType: 'float32', shape: ['m', 'n'] }] },
    }),
    { intraOpThreads: args.threads },
  );
  const prod = new Float32Array(args.out * args.in);
  const acc = new Float32Array(args.out * args.in);
  const matmulInto = async (b: Float32Array, a: Float32Array): Promise<void> => {
    await runSession(mm, { X: ortTensor('float32', b, [args.out, args.r]), Y: ortTensor('float32', a, [args.r, args.in]) }, { Z: ortTensor('float32', prod, [args.out, args.in]) });
  };
  const t = await timeIt(Math.max(1, Math.floor(args.reps / 3)), async () => {
    const abar = weightedAverage(cs.map((c) => c.a), w);
    const bbar = weightedAverage(cs.map((c) => c.b), w);
    acc.fill(0);
    for (let i = 0; i < cs.length; i++) {
      await matmulInto(cs[i].b.data, cs[i].a.data);
      const wi = w[i];
      for (let j = 0; j < acc.length; j++) acc[j] += wi * prod[j];
    }
    await matmulInto(bbar.data, abar.data);
    const d = w0.data;
    for (let j = 0; j < acc.length; j++) d[j] += s * (acc[j] - prod[j]);
  });
  await mm.release();
  return { kind: 'dense', ...t, reps: Math.max(1, Math.floor(args.reps / 3)), peakRssMiB: process.resourceUsage().maxRSS / 1024 };
}

async function strategyCase(args: CaseArgs): Promise<CaseResult> {
  const method = args.method ?? 'fedex';
  const spec = { name: 'model.layers.0.self_attn.q_proj', inFeatures: args.in, outFeatures: args.out, rank: args.r, alpha: 2 * args.r, useRslora: false, layout: 'linear' as const };
  const cs = clients(args);
  // FFA-LoRA: every client holds the shared A (only B was trained). Fed-SB: the shared A and B, and
  // each client its own r × r R.
  const shared = { a: cs[0].a, b: cs[0].b };
  const factors = method === 'ffa' ? cs.map((c) => ({ a: cs[0].a, b: c.b })) : method === 'fedsb' ? cs.map((_, i) => ({ ...shared, r: randomMatrix(args.r, args.r, createRng(10 + i), 0.1) })) : cs;
  const results = factors.map((f, client) => ({ client, factors: f }));
  const global = {
    spec,
    factors: method === 'ffa' ? { a: cs[0].a, b: randomMatrix(args.out, args.r, createRng(2), 0) } : method === 'fedsb' ? { ...shared, r: randomMatrix(args.r, args.r, createRng(3), 0.1) } : null,
  };
  const w0 = randomMatrix(args.out, args.in, createRng(1), 0.02);
  const backend = createOrtProductBackend({ intraOpThreads: args.threads });
  const strategy = createStrategy(method, { deviationMetrics: false });
  let inner = 0;
  const t = await timeIt(args.reps, async () => {
    const agg = strategy.aggregate(1, global, results, [])!;
    if (agg.baseUpdate !== null) await applyBaseChange(w0, 'linear', agg.baseUpdate, backend);
    inner = agg.metrics.baseUpdateInner;
  });
  await backend.dispose();
  return { kind: 'strategy', ...t, reps: args.reps, peakRssMiB: process.resourceUsage().maxRSS / 1024, extra: { method, inner } };
}

async function modelCase(args: CaseArgs): Promise<CaseResult> {
  const updater = createStoredUpdateKernel({ intraOpThreads: args.threads });
  const t = performance.now();
  const report = await aggregateFolders({ method: 'fedex', base: args.base!, adapters: args.adapters!, out: args.outDir!, updater, force: true, checkRows: 16 });
  const ms = performance.now() - t;
  await updater.dispose();
  return {
    kind: 'model',
    medianMs: ms,
    minMs: ms,
    reps: 1,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    extra: { modules: report.modules.length, exact: report.summary.allWithinTolerance, maxExactnessRelativeError: report.summary.maxExactnessRelativeError },
  };
}

const args = JSON.parse(process.argv[2]) as CaseArgs;
const run = { fused: fusedCase, stored: storedCase, dense: denseCase, model: modelCase, strategy: strategyCase }[args.kind];
process.stdout.write(`${JSON.stringify(await run(args))}\n`);
