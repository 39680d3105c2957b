/**
 * Trainer benchmark (docs/math.md §3): LoRA training tokens/s of the project's trainer — the one
 * `fedex train` runs — against PyTorch doing the identical step (bench/torch/train.py), in the same
 * run, on a GPT-2-small-shaped model with random weights (12 layers, d = 768, 12 heads, vocab
 * 50257, T = 128, batch 8, LoRA r = 8, alpha 16 on PEFT target_modules ['c_attn', 'c_proj'],
 * AdamW, float32, no dropout); and the trainer alone on the shipped models/tiny-gpt2; then the
 * frozen base's precisions (precisionBench) and activation recomputation on / off (recomputeBench).
 * Every case runs in its own process (its own peak RSS). Both sides train on the same rows of the
 * same pre-tokenized file from the same checkpoint, so their first-step losses must agree.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRng } from '../src/core/random.js';
import { BASE_PRECISIONS } from '../src/model/basePrecision.js';
import { writeSyntheticCheckpoint, type SyntheticModelSpec } from '../src/model/checkpoints/synthetic.js';
import { writeRandomGpt2Checkpoint } from '../src/model/checkpoints/tinyGpt2.js';
import type { TinyGpt2Spec } from '../src/model/checkpoints/tinyGpt2.js';
import { defaultModelDir } from '../src/trainer/defaultModel.js';
import type { BenchRow } from './aggregation.js';
import { PYTHON, type BenchOptions } from './common.js';
import type { TrainerCaseArgs, TrainerCaseResult } from './trainerCase.js';

/** A trainer row: step times in medianMs/minMs, and tokens/s (or, for the ratio row, ours / PyTorch). */
export interface TrainerRow extends BenchRow {
  readonly tokensPerSecond?: { readonly median: number; readonly best: number };
  /** Ours / PyTorch tokens/s, median and best. */
  readonly ratio?: { readonly median: number; readonly best: number };
  /** Every timed step, in milliseconds (for the JSON rows). */
  readonly stepMs?: readonly number[];
  /** Recompute rows: every step's loss (warm-up included) and the trainer's own estimate (trainer.info.memory.estimate), MiB. */
  readonly losses?: readonly number[];
  readonly estimateMiB?: { readonly total: number; readonly train: number };
}

const here = fileURLToPath(new URL('.', import.meta.url));
const LR = 1e-4;

interface TorchResult {
  torch: string;
  threads: number;
  step_ms: number[];
  warmup_ms: number[];
  median_ms: number;
  min_ms: number;
  tokens_per_step: number;
  first_loss: number;
  last_loss: number;
  modules: string[];
  trainable: number;
  peak_rss_mib: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function threadEnv(threads: number): NodeJS.ProcessEnv {
  const n = String(threads);
  return { ...process.env, OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n };
}

function runOurs(args: TrainerCaseArgs): TrainerCaseResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'trainerCase.ts'), JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 1 << 24, env: threadEnv(args.threads) });
  if (r.status !== 0) throw new Error(`trainer bench case (${args.modelDir}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as TrainerCaseResult;
}

function runTorch(args: TrainerCaseArgs): TorchResult | string {
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return 'PyTorch not installed (bash bench/setup.sh: apt-get install python3-torch libopenblas0-pthread)';
  const py = {
    model_dir: args.modelDir,
    data: args.data,
    seq_len: args.seqLen,
    batch_size: args.batchSize,
    rank: args.rank,
    alpha: args.alpha,
    target_modules: args.targetModules,
    warmup: args.warmup,
    steps: args.steps,
    threads: args.threads,
    lr: args.lr,
  };
  const r = spawnSync(PYTHON, [join(here, 'torch', 'train.py'), JSON.stringify(py)], { encoding: 'utf8', maxBuffer: 1 << 24, env: threadEnv(args.threads) });
  if (r.status !== 0) return `PyTorch run failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult;
}

/** `model.safetensors` + `config.json` of a random GPT-2, generated once per spec and kept in the work dir. */
async function cachedCheckpoint(dir: string, spec: TinyGpt2Spec, log: (line: string) => void): Promise<void> {
  const stamp = join(dir, 'bench-spec.json');
  const want = JSON.stringify(spec);
  if (await readFile(stamp, 'utf8').then((s) => s === want, () => false)) return;
  log(`trainer: generating a random GPT-2 checkpoint (${spec.nLayer} layers, d=${spec.nEmbd}, vocab ${spec.vocabSize}) in ${dir}`);
  await rm(dir, { recursive: true, force: true });
  await writeRandomGpt2Checkpoint(dir, spec);
  await writeFile(stamp, want);
}

/** A random checkpoint of `spec` (writeSyntheticCheckpoint), generated once per spec and kept in `dir`. */
async function cachedSynthetic(dir: string, spec: SyntheticModelSpec, log: (line: string) => void): Promise<void> {
  const stamp = join(dir, 'bench-spec.json');
  if (await readFile(stamp, 'utf8').then((x) => x === JSON.stringify(spec), () => false)) return;
  log(`trainer: generating a random ${spec.family} checkpoint (${spec.layers} layers, d=${spec.hidden}, vocab ${spec.vocab}, ${spec.dtype ?? 'F32'}) in ${dir}`);
  await rm(dir, { recursive: true, force: true });
  await writeSyntheticCheckpoint(dir, spec);
  await writeFile(stamp, JSON.stringify(spec));
}

/** `rows` rows of `seqLen` seeded random token ids in [0, vocab), as pre-tokenized JSONL. */
async function tokenRows(path: string, rows: number, seqLen: number, vocab: number, seed: number): Promise<void> {
  const rng = createRng(seed);
  const lines = Array.from({ length: rows }, () => JSON.stringify({ input_ids: Array.from({ length: seqLen }, () => rng.int(vocab)) }));
  await writeFile(path, `${lines.join('\n')}\n`);
}

function warmupNote(ms: readonly number[]): string {
  return `warm-up step${ms.length === 1 ? '' : 's'} ${ms.map((x) => (x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`)).join(', ')}`;
}

function tokensPerSecond(tokens: number, medianMs: number, minMs: number): { median: number; best: number } {
  return { median: (tokens * 1000) / medianMs, best: (tokens * 1000) / minMs };
}

/** A case of ours as every trainer case trains: LoRA r 8, alpha 16, learning rate LR, the suite's threads. */
function caseArgs(o: BenchOptions, c: Omit<TrainerCaseArgs, 'rank' | 'alpha' | 'threads' | 'lr'>): TrainerCaseArgs {
  return { ...c, rank: 8, alpha: 16, threads: o.threads, lr: LR };
}

/** The timing fields of a row of ours: median and best step, peak RSS, tokens/s, and every step rounded by `round`. */
function timedRow(r: TrainerCaseResult, round: (ms: number) => number = Math.round): Required<Pick<TrainerRow, 'medianMs' | 'minMs' | 'peakRssMiB' | 'tokensPerSecond' | 'stepMs'>> {
  const medianMs = median(r.stepMs);
  const minMs = Math.min(...r.stepMs);
  return { medianMs, minMs, peakRssMiB: r.peakRssMiB, tokensPerSecond: tokensPerSecond(r.tokensPerStep, medianMs, minMs), stepMs: r.stepMs.map(round) };
}

/** `transformer.h.N.attn.c_attn` … → `attn.c_attn, attn.c_proj, mlp.c_proj × 12`. */
function describeModules(paths: readonly string[]): string {
  const kinds = [...new Set(paths.map((p) => p.replace(/^transformer\.h\.\d+\./, '')))];
  const layers = new Set(paths.map((p) => /^transformer\.h\.(\d+)\./.exec(p)?.[1])).size;
  return `${paths.length} modules: ${kinds.join(', ')} × ${layers} layers`;
}

/** Runs the trainer suite; returns rows for the table. */
export async function trainerBench(o: BenchOptions): Promise<TrainerRow[]> {
  const rows: TrainerRow[] = [];
  const spec: TinyGpt2Spec = o.smoke
    ? { vocabSize: 512, nEmbd: 64, nLayer: 2, nHead: 4, nPositions: 64, seed: 7, dropout: 0 }
    : { vocabSize: 50257, nEmbd: 768, nLayer: 12, nHead: 12, nPositions: 1024, seed: 7, dropout: 0 };
  const seqLen = o.smoke ? 32 : 128;
  const batchSize = o.smoke ? 2 : 8;
  const warmup = o.smoke ? 1 : 2;
  const steps = o.smoke ? 3 : 10;
  const dir = join(o.workDir, `gpt2-random-${spec.nLayer}l-${spec.nEmbd}d-v${spec.vocabSize}`);
  await mkdir(o.workDir, { recursive: true });
  await cachedCheckpoint(dir, spec, o.log);
  // Exactly one batch of rows (and the same file as eval set): every step trains on these rows, on both sides.
  const data = join(o.workDir, `trainer-data-${spec.vocabSize}-${batchSize}x${seqLen}.jsonl`);
  await tokenRows(data, batchSize, seqLen, spec.vocabSize, 11);

  const label = o.smoke
    ? `GPT-2 ${spec.nLayer}×${spec.nEmbd} LoRA step (smoke), T=${seqLen}, batch ${batchSize}`
    : `GPT-2-small LoRA step, T=${seqLen}, batch ${batchSize}`;
  const args = caseArgs(o, { modelDir: dir, data, seqLen, batchSize, targetModules: ['c_attn', 'c_proj'], warmup, steps });
  o.log(`trainer: ${label}, ours (${warmup} warm-up + ${steps} timed steps)`);
  const ours = runOurs(args);
  const oursTimed = timedRow(ours);
  rows.push({
    suite: 'trainer',
    case: label,
    impl: 'fedex trainer (createTrainer, onnxruntime)',
    ...oursTimed,
    note: `${describeModules(ours.modules)}; step-1 loss ${ours.firstLoss.toPrecision(8)}; setup ${ours.setupSeconds.toFixed(1)} s; ${warmupNote(ours.warmupMs)}`,
  });

  o.log(`trainer: ${label}, PyTorch`);
  const torch = runTorch(args);
  if (typeof torch === 'string') {
    rows.push({ suite: 'trainer', case: label, impl: 'PyTorch', medianMs: NaN, minMs: NaN, peakRssMiB: null, note: torch });
  } else {
    const same = torch.modules.length === ours.modules.length && torch.modules.every((m, i) => m === ours.modules[i]);
    const lossGap = Math.abs(torch.first_loss - ours.firstLoss) / Math.abs(torch.first_loss);
    const torchTps = tokensPerSecond(torch.tokens_per_step, torch.median_ms, torch.min_ms);
    rows.push({
      suite: 'trainer',
      case: label,
      impl: `PyTorch ${torch.torch} (${torch.threads} threads)`,
      medianMs: torch.median_ms,
      minMs: torch.min_ms,
      peakRssMiB: torch.peak_rss_mib,
      tokensPerSecond: torchTps,
      stepMs: torch.step_ms.map(Math.round),
      note: `${same ? 'same modules' : `MODULES DIFFER: ${describeModules(torch.modules)}`}; step-1 loss ${torch.first_loss.toPrecision(8)} (${lossGap < 1e-4 ? 'matches' : 'DIFFERS'}, rel. ${lossGap.toExponential(1)}); ${
        warmupNote(torch.warmup_ms)
      }`,
    });
    rows.push({
      suite: 'trainer',
      case: label,
      impl: 'ratio ours / PyTorch (tokens/s)',
      medianMs: NaN,
      minMs: NaN,
      peakRssMiB: null,
      ratio: { median: oursTimed.tokensPerSecond.median / torchTps.median, best: oursTimed.tokensPerSecond.best / torchTps.best },
      note: 'target ≥ 1.0×',
    });
  }

  // The shipped default model, as `fedex train` uses it without --model.
  const tiny = defaultModelDir();
  const tinyConfig = JSON.parse(await readFile(join(tiny, 'config.json'), 'utf8')) as { vocab_size: number };
  const tinyT = 64;
  const tinyData = join(o.workDir, `trainer-data-${tinyConfig.vocab_size}-8x${tinyT}.jsonl`);
  await tokenRows(tinyData, 8, tinyT, tinyConfig.vocab_size, 12);
  o.log('trainer: tiny default model (models/tiny-gpt2), ours');
  const t = runOurs({ ...args, modelDir: tiny, data: tinyData, seqLen: tinyT, batchSize: 8, targetModules: ['c_attn'], warmup: o.smoke ? 1 : 3, steps: o.smoke ? 3 : 20 });
  rows.push({
    suite: 'trainer',
    case: `tiny default model (models/tiny-gpt2), T=${tinyT}, batch 8, r=8 on c_attn`,
    impl: 'fedex trainer (createTrainer, onnxruntime)',
    ...timedRow(t, (x) => Math.round(x * 10) / 10),
    note: `${describeModules(t.modules)}; setup ${t.setupSeconds.toFixed(1)} s; ${warmupNote(t.warmupMs)}`,
  });
  await rm(data, { force: true });
  await rm(tinyData, { force: true });
  if (o.smoke) await rm(dir, { recursive: true, force: true });
  rows.push(...await precisionBench(o));
  rows.push(...await recomputeBench(o));
  return rows;
}

/**
 * The frozen base held in fp32, fp16, bf16 and int4, side by side in one run, one process each
 * (its own peak RSS): a Llama-family model with random BF16 weights on disk (as released models
 * are), LoRA r 8 on q_proj and v_proj, AdamW. bf16 is fed as stored; fp32 widens on the host, fp16
 * rounds, int4 block-quantises when the trainer loads the weights.
 */
export async function precisionBench(o: BenchOptions): Promise<TrainerRow[]> {
  const spec = o.smoke
    ? { family: 'llama', layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 128, vocab: 512, positions: 64, dtype: 'BF16', seed: 5 } as const
    : { family: 'llama', layers: 6, hidden: 768, heads: 12, kvHeads: 4, intermediate: 2048, vocab: 32000, positions: 256, dtype: 'BF16', seed: 5 } as const;
  const seqLen = o.smoke ? 32 : 128;
  const batchSize = o.smoke ? 2 : 4;
  const dir = join(o.workDir, `llama-random-${spec.layers}l-${spec.hidden}d-v${spec.vocab}-bf16`);
  await cachedSynthetic(dir, spec, o.log);
  const data = join(o.workDir, `trainer-data-${spec.vocab}-${batchSize}x${seqLen}.jsonl`);
  await tokenRows(data, batchSize, seqLen, spec.vocab, 13);
  const label = `Llama ${spec.layers}×${spec.hidden} (ff ${spec.intermediate}, vocab ${spec.vocab}, BF16 on disk), T=${seqLen}, batch ${batchSize}, r=8 on q_proj, v_proj${o.smoke ? ' (smoke)' : ''}`;
  const rows: TrainerRow[] = [];
  for (const basePrecision of BASE_PRECISIONS) {
    o.log(`trainer: ${label}, frozen base in ${basePrecision}`);
    const r = runOurs(caseArgs(o, { modelDir: dir, data, seqLen, batchSize, targetModules: ['q_proj', 'v_proj'], warmup: 1, steps: o.smoke ? 2 : 4, basePrecision }));
    rows.push({
      suite: 'trainer',
      case: label,
      impl: `fedex trainer, frozen base ${basePrecision}`,
      ...timedRow(r),
      note: `step-1 loss ${r.firstLoss.toPrecision(6)}${r.relativeRounding === null ? '' : `; weight rounding ${r.relativeRounding.toExponential(1)}`}; setup ${r.setupSeconds.toFixed(1)} s; ${warmupNote(r.warmupMs)}`,
    });
  }
  await rm(data, { force: true });
  if (o.smoke) await rm(dir, { recursive: true, force: true });
  return rows;
}

/**
 * Activation recomputation (TrainerSetup.recompute, docs/devices.md): the same steps trained with
 * `recompute: 'off'` and `'on'`, side by side in one run, one process per run (its own peak RSS),
 * on a Llama-family model with random float32 weights where the activations dominate the step's
 * memory: 8 layers, d = 256, 4 heads, 2 key/value heads, ff 1024, vocab 4096, 4 rows × 512
 * tokens, LoRA r 8 on q_proj, v_proj, down_proj (as test/trainer/recomputeRss.test.ts). The
 * budget is high enough that neither run splits its batch. The processes alternate off, on, on,
 * off, off, on, on, off (4 pairs; `--smoke`: one pair, 2 layers, d = 64, 2 × 32 tokens) so that
 * both modes meet the same competing load; each runs 1 warm-up and 4 timed steps. tokens/s is the
 * median over every timed step of a mode's processes, the peak RSS the largest of them; the ratio
 * row gives on / off of those medians and of the best steps, and in its note the ratio of each
 * pair's medians (two processes next to each other in time) and their median. Both modes start
 * from the same adapter on the same rows: the first step's loss (B = 0) must be bit-equal, later
 * ones equal up to float32 rounding (onnxruntime may fuse the recomputed kernels differently).
 */
export async function recomputeBench(o: BenchOptions): Promise<TrainerRow[]> {
  const spec = o.smoke
    ? { family: 'llama', layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 128, vocab: 512, positions: 64, seed: 9 } as const
    : { family: 'llama', layers: 8, hidden: 256, heads: 4, kvHeads: 2, intermediate: 1024, vocab: 4096, positions: 512, seed: 9 } as const;
  const seqLen = o.smoke ? 32 : 512;
  const batchSize = o.smoke ? 2 : 4;
  const warmup = 1;
  const steps = o.smoke ? 2 : 4;
  const rounds = o.smoke ? 1 : 4;
  const targetModules = ['q_proj', 'v_proj', 'down_proj'];
  const dir = join(o.workDir, `llama-random-${spec.layers}l-${spec.hidden}d-v${spec.vocab}-f32`);
  await mkdir(o.workDir, { recursive: true });
  await cachedSynthetic(dir, spec, o.log);
  const data = join(o.workDir, `recompute-data-${spec.vocab}-${batchSize}x${seqLen}.jsonl`);
  await tokenRows(data, batchSize, seqLen, spec.vocab, 17);
  const label = `recompute: Llama ${spec.layers}×${spec.hidden} (ff ${spec.intermediate}, vocab ${spec.vocab}), T=${seqLen}, batch ${batchSize}, r=8 on ${targetModules.join(', ')}${o.smoke ? ' (smoke)' : ''}`;
  const modes = ['off', 'on'] as const;
  const runs = new Map<'off' | 'on', TrainerCaseResult[]>(modes.map((m) => [m, []]));
  for (let round = 0; round < rounds; round++) {
    for (const recompute of round % 2 === 0 ? modes : [...modes].reverse()) {
      o.log(`trainer: ${label}, recompute ${recompute}${rounds > 1 ? ` (round ${round + 1} of ${rounds})` : ''}`);
      runs.get(recompute)!.push(runOurs({ ...caseArgs(o, { modelDir: dir, data, seqLen, batchSize, targetModules, warmup, steps }), recompute, memoryBudgetBytes: 64 * 2 ** 30 }));
    }
  }
  await rm(data, { force: true });
  if (o.smoke) await rm(dir, { recursive: true, force: true });

  const mib = (b: number): number => b / 2 ** 20;
  const [off, on] = modes.map((m) => runs.get(m)!);
  const reference = off[0].losses;
  let lossGap = 0;
  for (const r of [...off, ...on]) {
    if (r.losses.length !== reference.length) lossGap = Infinity;
    else for (let i = 0; i < reference.length; i++) lossGap = Math.max(lossGap, Math.abs(r.losses[i] - reference[i]) / Math.abs(reference[i]));
  }
  // Step 1 runs on B = 0 (the base model's loss) and must be bit-equal; later steps may differ by float32
  // rounding where onnxruntime fuses the recomputed kernels differently (docs/devices.md: adapters within 2.5e-5).
  const firstEqual = [...off, ...on].every((r) => r.losses[0] === reference[0]);
  const losses = reference.map((x) => x.toPrecision(8)).join(', ');
  const lossNote = lossGap === 0
    ? `step losses equal (${losses})`
    : firstEqual && lossGap < 1e-5
    ? `step-1 loss equal, later steps within rel. ${lossGap.toExponential(1)} (${losses})`
    : `step losses DIFFER (max rel. ${lossGap.toExponential(1)})`;
  const rows: TrainerRow[] = [];
  const tps: number[][] = [];
  for (const [recompute, rs] of [['off', off], ['on', on]] as const) {
    const stepMs = rs.flatMap((r) => r.stepMs);
    const medianMs = median(stepMs);
    const minMs = Math.min(...stepMs);
    const tokensPerStep = rs[0].tokensPerStep;
    const t = tokensPerSecond(tokensPerStep, medianMs, minMs);
    tps.push([t.median, t.best]);
    const planned = rs.every((r) => r.recompute === (recompute === 'on') && r.splits === 1);
    const estimate = { total: mib(rs[0].estimateTotalBytes), train: mib(rs[0].estimateTrainBytes) };
    rows.push({
      suite: 'trainer',
      case: label,
      impl: `fedex trainer, recompute ${recompute}`,
      medianMs,
      minMs,
      peakRssMiB: Math.max(...rs.map((r) => r.peakRssMiB)),
      tokensPerSecond: t,
      stepMs: stepMs.map(Math.round),
      losses: rs[0].losses,
      estimateMiB: estimate,
      note: `${planned ? '' : 'PLAN DIFFERS (recompute or split); '}estimate ${estimate.total.toFixed(0)} MiB (train step ${estimate.train.toFixed(0)} MiB); `
        + `peak RSS ${rs.map((r) => r.peakRssMiB.toFixed(0)).join(' / ')} MiB; setup ${rs.map((r) => r.setupSeconds.toFixed(1)).join(' / ')} s; ${warmupNote(rs.flatMap((r) => r.warmupMs))}`,
    });
  }
  const pairRatios = off.map((r, i) => median(r.stepMs) / median(on[i].stepMs));
  const sorted = [...pairRatios].sort((a, b) => a - b);
  const pairMedian = (sorted[Math.floor((sorted.length - 1) / 2)] + sorted[Math.ceil((sorted.length - 1) / 2)]) / 2;
  const pairs = pairRatios.length > 1 ? `per pair ${pairRatios.map((x) => `${x.toFixed(2)}×`).join(', ')} (median ${pairMedian.toFixed(2)}×); ` : '';
  rows.push({
    suite: 'trainer',
    case: label,
    impl: 'ratio recompute on / off (tokens/s)',
    medianMs: NaN,
    minMs: NaN,
    peakRssMiB: null,
    ratio: { median: tps[1][0] / tps[0][0], best: tps[1][1] / tps[0][1] },
    note: `${pairs}peak RSS on / off ${(rows[1].peakRssMiB! / rows[0].peakRssMiB!).toFixed(2)}×; ${lossNote}`,
  });
  return rows;
}
