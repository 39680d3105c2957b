// The trainer on onnxruntime's WebGPU provider against the CPU: `fedex train --device webgpu` and
// `--device cpu` with the same seed on GPT-2 (the shipped models/tiny-gpt2), a Llama-family (also
// with activation recomputation) and a BERT classification checkpoint (small ones generated here), comparing the per-step losses, every
// tensor of the trained adapter and the eval loss within the tolerances below. The WebGPU run logs
// onnxruntime's node placement (`--ort-log verbose`) and fails when any node of its sessions (train
// step or gradient + update, eval, greedy decoding) runs on the CPU provider (docs/devices.md).
//
// Without a GPU this runs on SwiftShader, the software Vulkan driver in Debian's chromium-common
// (scripts/webgpu/setup.sh installs it; .ci/run runs it). Its variables must be set when a process
// starts, so the WebGPU runs are `fedex` child processes. SwiftShader compiles a shader per kernel
// and input shape, so the shapes are tiny and fixed: language models train on packed rows, and each
// batch (train and eval) holds all examples of its split, so every step sees the same shapes.
// Without the driver the file skips locally and fails in CI (CI set).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { withSafetensors } from '../../src/formats/safetensors.js';
import { writeSyntheticCheckpoint } from '../../src/model/checkpoints/synthetic.js';
import type { SyntheticModelSpec } from '../../src/model/checkpoints/synthetic.js';
import { saveBpeTokenizer } from '../../src/trainer/data/bpeTrainer.js';
import { cli } from '../helpers/cliRun.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { taskTokenizerFiles } from '../trainer/fixtures.js';
import { nodePlacements } from './placement.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SETUP = join(ROOT, 'scripts', 'webgpu', 'setup.sh');

/**
 * Tolerances, WebGPU (SwiftShader) against CPU, float32 throughout. Measured (the same on every run:
 * SwiftShader is deterministic) with the WebGPU form of the graphs (fixed shapes, LogSoftmax
 * decomposed, int32 batch tensors, the dropout hash in uint32): step losses up to 9.5e-7, eval loss
 * up to 4.3e-6 (GPT-2), adapter tensors up to 3.1e-5 (Llama; GPT-2 1.7e-5, BERT 7.9e-6; BERT trains
 * with its config's dropout 0.1, the same masks on both). The adapter bound is loosest because
 * AdamW divides each gradient entry by its own magnitude, so an entry whose gradient is near zero
 * moves by a visible part of lr = 1e-2 on rounding alone; a wrong kernel or gradient moves entries by
 * about lr itself and the losses by far more than these bounds.
 */
const LOSS_TOL = 1e-5;
const EVAL_TOL = 2e-5;
const ADAPTER_TOL = 2e-4;
const STEPS = 3;

/**
 * The Vulkan driver the WebGPU runs use: a real GPU's ICD when FEDEX_WEBGPU_ICD names one (bench/gpu.sh
 * on an NVIDIA machine), else the variables scripts/webgpu/setup.sh --check prints for SwiftShader
 * (`export NAME=value`, shell-quoted), or why there are none.
 */
function vulkanDriver(): { env: Record<string, string> } | { missing: string } {
  const icd = process.env.FEDEX_WEBGPU_ICD;
  if (icd !== undefined && icd !== '') return { env: { VK_ICD_FILENAMES: icd } };
  const probe = spawnSync('bash', [SETUP, '--check'], { encoding: 'utf8' });
  if (probe.error) return { missing: `bash not runnable: ${probe.error.message}` };
  if (probe.status !== 0) return { missing: probe.stderr.trim() };
  // %q leaves a plain path as it is and escapes anything else with a backslash.
  const env = Object.fromEntries([...probe.stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], m[2].replace(/\\(.)/g, '$1')]));
  return { env };
}

const driver = vulkanDriver();
const inCi = !['', '0', 'false'].includes((process.env.CI ?? '').toLowerCase());
const skip = 'missing' in driver && !inCi
  ? `WebGPU checks skipped: ${driver.missing} (in CI this fails instead)`
  : false;

interface Case {
  readonly id: string;
  readonly name: string;
  /** Model folder: the shipped GPT-2, or a checkpoint generated in `before`. */
  readonly model: () => string;
  readonly flags: readonly string[];
  /** Sessions the WebGPU run creates: train step (or gradient + update), eval, and greedy decoding for prompt/completion data. */
  readonly sessions: number;
}

interface Run {
  readonly losses: number[];
  readonly evalLoss: number;
  readonly adapter: Map<string, Float32Array>;
}

async function readRun(out: string): Promise<Run> {
  const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; loss?: number });
  const evaluation = lines.find((l) => l.type === 'eval');
  assert.ok(evaluation?.loss !== undefined, `no eval line in ${out}/metrics.jsonl`);
  const adapter = await withSafetensors(join(out, 'adapter_model.safetensors'), async (reader) => {
    const tensors = new Map<string, Float32Array>();
    for (const name of reader.tensors.keys()) tensors.set(name, await reader.readFloat32(name));
    return tensors;
  });
  return { losses: lines.filter((l) => l.type === 'step').map((l) => l.loss!), evalLoss: evaluation.loss, adapter };
}

/**
 * `fedex <args>` in a child process started with `env`, its stderr written to `logFile`: onnxruntime
 * writes its log to file descriptor 2 natively, and a pipe (non-blocking under Node) drops what it
 * cannot take at once, so the placement log goes through a file.
 */
async function fedexLogged(args: readonly string[], env: Record<string, string>, logFile: string): Promise<{ code: number | null; stderr: string }> {
  const fd = openSync(logFile, 'w');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', fd], env: { ...process.env, ...env } });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    return { code, stderr: await readFile(logFile, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe('fedex train --device webgpu matches --device cpu', { skip, timeout: 300_000 }, () => {
  const tmp = suiteTempDir('webgpu');
  let env: Record<string, string>;
  before(async () => {
    if ('missing' in driver) throw new Error(`no SwiftShader Vulkan driver for the WebGPU checks: ${driver.missing}`);
    env = driver.env;
    const tokenizer = taskTokenizerFiles();
    const specs: Record<string, SyntheticModelSpec> = {
      llama: { family: 'llama', layers: 2, hidden: 16, heads: 2, kvHeads: 1, intermediate: 24, vocab: tokenizer.vocabSize, positions: 64, seed: 3 },
      bert: { family: 'bert', layers: 2, hidden: 16, heads: 2, intermediate: 24, vocab: tokenizer.vocabSize, positions: 64, seed: 5 },
    };
    for (const [name, spec] of Object.entries(specs)) {
      await writeSyntheticCheckpoint(join(tmp.path, name), spec);
      await saveBpeTokenizer(join(tmp.path, name), tokenizer);
    }
  });

  const common = ['--steps', String(STEPS), '--lr', '0.01', '--schedule', 'constant', '--rank', '4', '--alpha', '8', '--seed', '1', '--threads', '1'];
  // Language models: 8 examples packed into rows of 32 tokens, 2 rows per batch; 2 eval examples in one batch.
  const lmData = ['--data', 'task:arith?count=8&evalCount=2&seed=1', '--pack', '--seq-len', '32', '--eval-examples', '2'];
  const lm = [...lmData, '--batch-size', '2'];
  const cases: Case[] = [
    { id: 'gpt2', name: 'GPT-2 (models/tiny-gpt2, c_attn)', model: () => join(ROOT, 'models', 'tiny-gpt2'), flags: lm, sessions: 3 },
    { id: 'llama', name: 'Llama (2 layers, grouped-query, all seven projections)', model: () => join(tmp.path, 'llama'), flags: [...lm, '--target-modules', 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj'], sessions: 3 },
    // Classification: 4 examples, all in each batch, 4 eval examples; padded to --seq-len on WebGPU, to the longest example on the CPU.
    { id: 'bert', name: 'BERT sequence classification (query, value + classifier)', model: () => join(tmp.path, 'bert'),
      flags: ['--data', 'task:sentiment?count=4&evalCount=4&seed=1', '--seq-len', '32', '--batch-size', '4', '--eval-examples', '4'], sessions: 2 },
    // Activation recomputation: each block's copies (recompute nodes) must run on the GPU too.
    { id: 'llama-recompute', name: 'Llama, activation recomputation (--recompute on)', model: () => join(tmp.path, 'llama'), flags: [...lm, '--target-modules', 'q_proj,v_proj,down_proj', '--recompute', 'on'], sessions: 3 },
    // Gradient accumulation: the gradient and update sessions instead of the fused step.
    { id: 'gpt2-accum', name: 'GPT-2, 2 micro-batches per step (gradient + update sessions)', model: () => join(ROOT, 'models', 'tiny-gpt2'), flags: [...lmData, '--batch-size', '1', '--grad-accum', '2'], sessions: 4 },
  ];

  for (const c of cases) {
    test(`${c.name}: step losses, adapter tensors and eval loss agree`, async (t: TestContext) => {
      const out = (device: string): string => join(tmp.path, `${c.id}-${device}`);
      const args = (device: string): string[] => ['train', '--model', c.model(), ...c.flags, ...common, '--device', device, '--out', out(device)];

      const [cpuExit, gpuExit] = await Promise.all([cli(...args('cpu')), fedexLogged([...args('webgpu'), '--ort-log', 'verbose'], env, `${out('webgpu')}.log`)]);

      assert.equal(cpuExit.code, 0, cpuExit.stderr);
      assert.equal(gpuExit.code, 0, gpuExit.stderr.slice(-4000));
      // Every node of every session on the WebGPU provider: no CPU islands, no copies between them.
      const placements = nodePlacements(gpuExit.stderr);
      assert.equal(placements.length, c.sessions, `${placements.length} node placements in the log, expected one per session (${c.sessions})`);
      for (const [i, session] of placements.entries()) {
        const elsewhere = [...session].filter(([provider]) => provider !== 'WebGpuExecutionProvider');
        assert.deepEqual(elsewhere.map(([provider, p]) => `${provider}: ${p.count} nodes (${p.nodes.slice(0, 12).join(', ')})`), [], `session ${i + 1} of ${placements.length} runs nodes off the GPU`);
      }
      t.diagnostic(`WebGPU nodes per session: ${placements.map((p) => p.get('WebGpuExecutionProvider')?.count ?? 0).join(', ')}`);
      const cpu = await readRun(out('cpu'));
      const gpu = await readRun(out('webgpu'));
      assert.equal(cpu.losses.length, STEPS);
      assert.equal(gpu.losses.length, STEPS);
      assert.deepEqual([...gpu.adapter.keys()], [...cpu.adapter.keys()]);
      const lossDiff = maxAbsDiff(cpu.losses, gpu.losses);
      const evalDiff = Math.abs(cpu.evalLoss - gpu.evalLoss);
      let adapterDiff = 0;
      let largestB = 0;
      for (const [name, want] of cpu.adapter) {
        adapterDiff = Math.max(adapterDiff, maxAbsDiff(want, gpu.adapter.get(name)!));
        if (name.includes('lora_B')) largestB = Math.max(largestB, maxAbsDiff(want, new Float32Array(want.length)));
      }
      t.diagnostic(`max |Δ| step loss ${lossDiff.toExponential(2)}, eval loss ${evalDiff.toExponential(2)}, adapter ${adapterDiff.toExponential(2)} (largest |lora_B| ${largestB.toFixed(4)})`);
      assert.ok(lossDiff <= LOSS_TOL, `step losses cpu ${cpu.losses.join(', ')} vs webgpu ${gpu.losses.join(', ')}`);
      assert.ok(evalDiff <= EVAL_TOL, `eval loss cpu ${cpu.evalLoss} vs webgpu ${gpu.evalLoss}`);
      assert.ok(adapterDiff <= ADAPTER_TOL, `adapter tensors differ by up to ${adapterDiff}`);
      // The comparison means something: training moved the adapter (LoRA B starts at zero), and the
      // WebGPU run did its own arithmetic (a silent CPU fallback would match bit for bit).
      assert.ok(largestB > 1e-3, `lora_B stayed near zero (largest ${largestB})`);
      assert.ok(adapterDiff > 0 || lossDiff > 0, 'webgpu and cpu agree bit for bit: did the WebGPU run use the CPU?');
    });
  }
});
