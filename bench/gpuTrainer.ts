/**
 * The trainer on a GPU against PyTorch on the same card (issue 17, item 5), run by bench/gpu.sh:
 * `node --import tsx bench/gpuTrainer.ts [--shape 1b|tiny] [--device webgpu|cpu] [--precision fp16|fp32|bf16|int4[,…]]
 * [--torch-device cuda|cpu] [--batch B] [--seq T] [--warmup n] [--steps n] [--work dir] [--json file]`.
 * The same at Llama-3.2-1B's shape on the CPU (issue 17's CPU benchmark: fp32, bf16-stored and int4
 * frozen weights against PyTorch float32): `--device cpu --torch-device cpu --precision fp32,bf16,int4`.
 *
 * A random Llama-family checkpoint (BF16 on disk) of the chosen shape — `1b`: Llama-3.2-1B's
 * widths (16 layers, hidden 2048, 32 heads over 8 key/value heads, MLP 8192, vocabulary 128256);
 * `tiny`: 2 layers of 64 for checking the pipeline on any machine — and B pre-tokenized rows of T
 * tokens. Each side trains the same LoRA (r 16, alpha 32, q_proj and v_proj) for warm-up + timed
 * steps in its own process: the project's trainer (bench/trainerCase.ts) on `--device` once for each
 * `--precision` its frozen weights are held in, and bench/torch/train_llama.py on `--torch-device`
 * once, its frozen weights in float16 (under torch.autocast) when fp16 is the only precision asked
 * for, else in float32. Printed: tokens/s of each (median and best step) and peak RSS, the ratios to
 * PyTorch, the step-1 losses (the base model's; equal to ~1e-4 at float32, to the weights' rounding
 * otherwise), and the model FLOP/s the trainer reached: per
 * token 4·P (forward and the input gradient of every frozen matrix of P weights, no weight
 * gradient) plus 12·T·d·L for attention scores and mixing (forward and backward, causal mask not
 * discounted), against the card's float32 peak when nvidia-smi names a card listed below (the
 * WebGPU kernels compute in float32).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRng } from '../src/core/random.js';
import { writeSyntheticCheckpoint, type SyntheticModelSpec } from '../src/model/checkpoints/synthetic.js';
import type { BasePrecision } from '../src/model/basePrecision.js';
import type { Device } from '../src/runtime/session.js';
import type { TrainerCaseArgs, TrainerCaseResult } from './trainerCase.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const ROOT = resolve(here, '..');

const SHAPES: Readonly<Record<string, SyntheticModelSpec>> = {
  '1b': { family: 'llama', layers: 16, hidden: 2048, heads: 32, kvHeads: 8, intermediate: 8192, vocab: 128256, positions: 4096, dtype: 'BF16', seed: 7 },
  tiny: { family: 'llama', layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 128, vocab: 512, positions: 256, dtype: 'BF16', seed: 7 },
};

/** Float32 (non-tensor-core) peak TFLOP/s of the cards this workplace lends, from NVIDIA's data sheets (SXM parts). */
const FP32_PEAK_TFLOPS: readonly (readonly [RegExp, number])[] = [[/H200/, 67], [/H100/, 67], [/A100/, 19.5]];

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: '1b' },
    device: { type: 'string', default: 'webgpu' },
    precision: { type: 'string', default: 'fp16' },
    'torch-device': { type: 'string', default: 'cuda' },
    batch: { type: 'string', default: '4' },
    seq: { type: 'string', default: '512' },
    warmup: { type: 'string', default: '2' },
    steps: { type: 'string', default: '5' },
    threads: { type: 'string', default: '4' },
    work: { type: 'string', default: 'bench/results/work' },
    json: { type: 'string' },
  },
});

function fail(message: string): never {
  process.stderr.write(`gpuTrainer: ${message}\n`);
  process.exit(2);
}

const spec = SHAPES[values.shape!] ?? fail(`--shape takes ${Object.keys(SHAPES).join(' or ')}`);
if (!['webgpu', 'cpu', 'cuda'].includes(values.device!)) fail('--device takes webgpu, cuda or cpu');
const PRECISIONS: readonly BasePrecision[] = ['fp32', 'fp16', 'bf16', 'int4'];
const precisions = values.precision!.split(',').map((p) => p.trim()) as BasePrecision[];
if (precisions.length === 0 || precisions.some((p) => !PRECISIONS.includes(p))) fail(`--precision takes a comma-separated list of ${PRECISIONS.join(', ')}; got '${values.precision}'`);
const [batch, seq, warmup, steps, threads] = ['batch', 'seq', 'warmup', 'steps', 'threads'].map((k) => {
  const n = Number(values[k as 'batch']);
  if (!Number.isInteger(n) || n < 1) fail(`--${k} takes a positive integer`);
  return n;
});

interface Side {
  readonly medianTokensPerSecond: number;
  readonly bestTokensPerSecond: number;
  readonly medianMs: number;
  readonly firstLoss: number;
  readonly peakRssMiB: number;
  readonly note: string;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function run(command: string, args: readonly string[]): string {
  const r = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.error !== undefined) fail(`${command}: ${r.error.message}`);
  if (r.status !== 0) fail(`${command} ${args[0]} exited ${r.status}:\n${r.stderr.slice(-4000)}`);
  return r.stdout.trim().split('\n').pop()!;
}

function cardName(): string | undefined {
  const r = spawnSync('nvidia-smi', ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0] : undefined;
}

async function main(): Promise<void> {
  const dir = resolve(ROOT, values.work!, `llama-random-${values.shape}-bf16`);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    const t0 = performance.now();
    await writeSyntheticCheckpoint(dir, spec);
    process.stderr.write(`wrote ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const data = join(dir, `rows-${batch}x${seq}.jsonl`);
  const rng = createRng(11);
  await mkdir(dir, { recursive: true });
  await writeFile(data, `${Array.from({ length: batch }, () => JSON.stringify({ input_ids: Array.from({ length: seq }, () => rng.int(spec.vocab - 1)) })).join('\n')}\n`);
  const lora = { rank: 16, alpha: 32, targetModules: ['q_proj', 'v_proj'], lr: 1e-4 };

  const tps = (ms: number): number => (batch * seq) / (ms / 1000);
  const oursSides = precisions.map((precision): Side & { readonly precision: BasePrecision; readonly modules: number } => {
    const caseArgs: TrainerCaseArgs = {
      modelDir: dir,
      data,
      seqLen: seq,
      batchSize: batch,
      ...lora,
      warmup,
      steps,
      threads,
      device: values.device as Device,
      ...(precision !== 'fp32' ? { basePrecision: precision } : {}),
    };
    const ours = JSON.parse(run(process.execPath, ['--import', 'tsx', join(here, 'trainerCase.ts'), JSON.stringify(caseArgs)])) as TrainerCaseResult;
    process.stderr.write(`fedex ${precision}: steps ${ours.stepMs.map(Math.round).join(', ')} ms\n`);
    return {
      precision,
      modules: ours.modules.length,
      medianTokensPerSecond: tps(median(ours.stepMs)),
      bestTokensPerSecond: tps(Math.min(...ours.stepMs)),
      medianMs: median(ours.stepMs),
      firstLoss: ours.firstLoss,
      peakRssMiB: ours.peakRssMiB,
      note: `fedex ${values.device} ${precision}; setup ${ours.setupSeconds.toFixed(1)} s, peak RSS by then ${ours.setupPeakRssMiB.toFixed(0)} MiB; warm-up ${ours.warmupMs.map(Math.round).join(', ')} ms`,
    };
  });

  const python = process.env.FEDEX_PYTHON ?? 'python3';
  const torchArgs = {
    model_dir: dir,
    data,
    batch_size: batch,
    seq_len: seq,
    rank: lora.rank,
    alpha: lora.alpha,
    target_modules: lora.targetModules,
    lr: lora.lr,
    warmup,
    steps,
    threads,
    device: values['torch-device'],
    frozen: precisions.every((p) => p === 'fp16') ? 'float16' : 'float32',
  };
  const torch = JSON.parse(run(python, [join(here, 'torch', 'train_llama.py'), JSON.stringify(torchArgs)])) as {
    torch: string;
    device: string;
    step_ms: number[];
    median_ms: number;
    min_ms: number;
    first_loss: number;
    warmup_ms: number[];
    peak_gpu_mib: number | null;
    peak_rss_mib: number;
    modules: string[];
  };
  const torchSide: Side = {
    medianTokensPerSecond: tps(torch.median_ms),
    bestTokensPerSecond: tps(torch.min_ms),
    medianMs: torch.median_ms,
    firstLoss: torch.first_loss,
    peakRssMiB: torch.peak_rss_mib,
    note: `PyTorch ${torch.torch} on ${torch.device}, frozen ${torchArgs.frozen}; warm-up ${torch.warmup_ms.map(Math.round).join(', ')} ms${torch.peak_gpu_mib !== null ? `; peak GPU memory ${torch.peak_gpu_mib.toFixed(0)} MiB` : ''}`,
  };
  for (const o of oursSides) if (torch.modules.length !== o.modules) fail(`the two sides adapt different modules: ${o.modules} against ${torch.modules.length}`);

  // Model FLOPs per step (see the module comment).
  const d = spec.hidden;
  const hd = d / spec.heads;
  const kv = (spec.kvHeads ?? spec.heads) * hd;
  const ff = spec.intermediate!;
  const matrixParams = spec.layers * (d * d + 2 * kv * d + d * d + 3 * ff * d) + spec.vocab * d;
  const flopsPerStep = batch * seq * (4 * matrixParams + 12 * seq * d * spec.layers);
  const card = cardName();
  const peak = card === undefined ? undefined : FP32_PEAK_TFLOPS.find(([re]) => re.test(card))?.[1];
  const achieved = (o: Side): number => flopsPerStep / (o.medianMs / 1000) / 1e12;
  const result = {
    shape: values.shape,
    spec,
    batch,
    seq,
    card: card ?? 'no NVIDIA GPU (nvidia-smi)',
    ours: oursSides.map((o) => ({
      ...o,
      ratio: { median: o.medianTokensPerSecond / torchSide.medianTokensPerSecond, best: o.bestTokensPerSecond / torchSide.bestTokensPerSecond, peakRss: o.peakRssMiB / torchSide.peakRssMiB },
      firstLossGap: Math.abs(o.firstLoss - torchSide.firstLoss) / Math.abs(torchSide.firstLoss),
      achievedTflops: achieved(o),
      ...(peak !== undefined ? { shareOfPeak: achieved(o) / peak } : {}),
    })),
    torch: torchSide,
    modelTflopsPerStep: flopsPerStep / 1e12,
    ...(peak !== undefined ? { fp32PeakTflops: peak } : {}),
  };
  const line = (name: string, s: Side): string =>
    `${name.padEnd(12)} ${s.medianTokensPerSecond.toFixed(1).padStart(9)} tok/s median, ${s.bestTokensPerSecond.toFixed(1).padStart(9)} best, step ${s.medianMs.toFixed(0)} ms, peak RSS ${s.peakRssMiB.toFixed(0)} MiB, step-1 loss ${
      s.firstLoss.toPrecision(7)
    }  (${s.note})`;
  process.stdout.write(`${result.card}; Llama ${values.shape} shape, ${batch} × ${seq} tokens, LoRA r 16 on q_proj, v_proj, ${threads} threads\n`);
  for (const o of result.ours) process.stdout.write(`${line(`fedex ${o.precision}`, o)}\n`);
  process.stdout.write(`${line('PyTorch', torchSide)}\n`);
  for (const o of result.ours) {
    process.stdout.write(
      `fedex ${o.precision} / PyTorch: tokens/s ${o.ratio.median.toFixed(3)} median, ${o.ratio.best.toFixed(3)} best; peak RSS ${o.ratio.peakRss.toFixed(2)}; step-1 loss gap ${o.firstLossGap.toExponential(1)} (relative); model FLOP/s ${
        o.achievedTflops.toFixed(3)
      } TFLOP/s`
        + `${peak !== undefined ? `, ${(100 * o.achievedTflops / peak).toFixed(1)} % of the card's ${peak} TFLOP/s float32 peak` : ''}\n`,
    );
  }
  process.stdout.write(`model work: ${result.modelTflopsPerStep.toFixed(2)} TFLOP a step\n`);
  if (values.json !== undefined) await writeFile(values.json, `${JSON.stringify(result, null, 2)}\n`);
}

await main();
