/**
 * `fedex train`: LoRA fine-tuning of a model folder on a JSONL file or a built-in task. Writes a PEFT
 * adapter folder (loads with `PeftModel.from_pretrained`) and `metrics.jsonl` (one line per step,
 * then the evaluation and a summary). Training runs in a worker thread; Ctrl-C stops it cleanly.
 */
import { mkdir, open, readdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEVICES, ORT_LOG_LEVELS } from '../../runtime/session.js';
import { readLoraConfig } from '../../formats/peft.js';
import { BASE_PRECISIONS } from '../../model/basePrecision.js';
import type { LoraSettings } from '../../model/types.js';
import { loraSettingsOfAdapter, readAdapterFolder, writeAdapterFolder } from '../../trainer/adapterFolder.js';
import type { ExplicitLora } from '../../trainer/adapterFolder.js';
import { resolveModelDir } from '../modelArg.js';
import { describeTruncation } from '../../trainer/data/report.js';
import { isAbortError } from '../../trainer/errors.js';
import { describeBaseStorage } from '../../trainer/frozenWeights.js';
import { createTrainer } from '../../trainer/loraTrainer.js';
import { SCHEDULES } from '../../trainer/schedule.js';
import { defaultLoraSettings } from '../../trainer/setup.js';
import { systemMemoryProbe } from '../../trainer/memoryBudget.js';
import { planRows, planTraining, planVerdict } from '../../trainer/trainingPlan.js';
import type { PlanSetup } from '../../trainer/trainingPlan.js';
import type { EvalResult, LoraTrainer, TrainerSetup } from '../../trainer/types.js';
import { defineCommand, type CliCommand, type CliIO } from '../command.js';
import { booleanFlag, choiceFlag, numberFlag, optionalString, stringFlag } from '../args.js';
import type { FlagSpecs, ParsedArgs } from '../args.js';
import { CliError, usageError } from '../errors.js';
import { ProgressBar } from '../ui/progress.js';
import { renderTable } from '../ui/table.js';
import { basePrecisionFlag, formatEval, listFlag } from './eval.js';
import { RECOMPUTE_FLAG, recomputeFlag } from '../recomputeFlag.js';

const FLAGS: FlagSpecs = {
  model: { type: 'string', value: 'dir', help: 'model folder (config.json, model.safetensors, tokenizer.json)', default: 'models/tiny-gpt2 (shipped)' },
  data: { type: 'string', value: 'jsonl|task:NAME', help: 'training data: a JSONL file or a built-in task (task:arith, task:sentiment, …)' },
  'eval-data': { type: 'string', value: 'jsonl|task:NAME', help: 'evaluation data (default: held-out part of --data)' },
  out: { type: 'string', value: 'dir', help: 'output folder: PEFT adapter + metrics.jsonl' },
  steps: { type: 'string', value: 'n', help: 'optimizer steps (default: one epoch, or --epochs)' },
  epochs: { type: 'string', value: 'n', help: 'passes over the data (when --steps is not given)' },
  lr: { type: 'string', value: 'x', help: 'peak learning rate', default: '2e-3' },
  optimizer: { type: 'string', value: 'adamw|sgd', help: 'optimizer', default: 'adamw' },
  schedule: { type: 'string', value: SCHEDULES.join('|'), help: 'learning-rate schedule after warm-up', default: 'linear' },
  warmup: { type: 'string', value: 'n', help: 'linear warm-up steps', default: '0' },
  'weight-decay': { type: 'string', value: 'x', help: 'weight decay', default: '0' },
  'max-grad-norm': { type: 'string', value: 'x', help: 'clip the global gradient norm (0 = off)', default: '1' },
  'grad-accum': { type: 'string', value: 'k', help: 'micro-batches per optimizer step', default: '1' },
  rank: { type: 'string', value: 'r', help: "LoRA rank (with --adapter: the adapter's r)", default: '8' },
  alpha: { type: 'string', value: 'a', help: "lora_alpha (scaling alpha/r; with --adapter: the adapter's)", default: '16' },
  dropout: { type: 'string', value: 'p', help: 'lora_dropout', default: '0' },
  rslora: { type: 'boolean', help: 'rsLoRA scaling alpha/√r' },
  'target-modules': { type: 'string', value: 'a,b', help: "modules to adapt (default: the architecture's, e.g. c_attn for GPT-2)" },
  'batch-size': { type: 'string', value: 'b', help: 'examples per micro-batch (split further when a step would not fit --memory-budget)', default: '8' },
  'seq-len': { type: 'string', value: 't', help: 'longest sequence (longer examples are cut)', default: '64' },
  pack: { type: 'boolean', help: 'pack language-modelling examples into full --seq-len rows instead of padding each (no example is cut; attention crosses example boundaries)' },
  seed: { type: 'string', value: 's', help: 'seed (data order, dropout, adapter init)', default: '0' },
  device: { type: 'string', value: DEVICES.join('|'), help: 'onnxruntime device', default: 'cpu' },
  threads: { type: 'string', value: 'n', help: 'onnxruntime intra-op threads (default: all cores)' },
  'base-precision': {
    type: 'string',
    value: BASE_PRECISIONS.join('|'),
    default: 'fp32',
    help: 'precision the frozen base weights are held in: fp16/bf16 halve their memory, int4 (4-bit blocks of 64 with a float32 scale) takes 4.5 bits a weight; '
      + 'widened to float32 where used, LoRA, optimizer and loss stay float32 (docs/devices.md; bf16: cpu only)',
  },
  ...RECOMPUTE_FLAG,
  'ort-log': {
    type: 'string',
    value: ORT_LOG_LEVELS.join('|'),
    help: "onnxruntime's own log of the training and eval sessions (verbose: where each node runs), written to stderr by the native library: redirect it to a file (a pipe may drop lines)",
  },
  'memory-budget': {
    type: 'string',
    value: 'GB',
    default: '60 % of the available memory',
    help: 'memory (decimal GB) a training step and evaluation may use: a batch that needs more runs as several micro-batches of the same step, '
      + 'a step that cannot fit one example stops before training; for cuda/webgpu give the GPU memory (it cannot be queried)',
  },
  adapter: { type: 'string', value: 'dir', help: 'start from this PEFT adapter instead of a fresh one (its r, lora_alpha, target_modules, rank_pattern, alpha_pattern, layers_to_transform are used and written back)' },
  'eval-examples': { type: 'string', value: 'n', help: 'examples evaluated after training (0 = skip)', default: '200' },
  force: { type: 'boolean', help: 'overwrite an adapter already in --out' },
  plan: {
    type: 'boolean',
    help: 'print the memory plan (weights by precision, adapter, optimizer state, activations, micro-batches) from config.json and the '
      + 'safetensors headers only, without reading a weight or training; exit 1 when it does not fit (--data optional: it sets the task)',
  },
  json: { type: 'boolean', help: 'print the summary (with --plan: the plan) as JSON' },
};

const USAGE = 'fedex train [--model <dir>] --data <jsonl|task:NAME> --out <dir> [--steps N | --epochs N] [--lr X] [--rank R] [--alpha A] [--target-modules a,b] …\n'
  + '       fedex train --plan [--model <dir>] [--data …] [--batch-size B] [--seq-len T] [--device D] [--base-precision P] [--recompute M] [--memory-budget GB] [--json]';
const SUMMARY = [
  'Fine-tunes LoRA adapters on a model folder (GPT-2, the Llama family with Qwen2/3, Mistral and Phi-3, Gemma 2/3, BERT/RoBERTa; docs/models.md) with onnxruntime and writes a PEFT adapter',
  'folder that loads in Hugging Face PEFT, plus metrics.jsonl. Without --model, the shipped tiny GPT-2.',
].join('\n');

/** The LoRA flags given explicitly (absent ones are not defaulted), named as the user typed them. */
function explicitLora(args: ParsedArgs): ExplicitLora {
  const cmd = 'train';
  const targets = listFlag(args, 'target-modules', cmd);
  return {
    ...(args.values.rank !== undefined ? { r: numberFlag(args, 'rank', cmd, 8, { min: 1, max: 1024, integer: true }) } : {}),
    ...(args.values.alpha !== undefined ? { alpha: numberFlag(args, 'alpha', cmd, 16, { min: 0 }) } : {}),
    ...(args.values.dropout !== undefined ? { dropout: numberFlag(args, 'dropout', cmd, 0, { min: 0, max: 0.99 }) } : {}),
    ...(booleanFlag(args, 'rslora') ? { useRslora: true } : {}),
    ...(targets !== undefined ? { targetModules: targets } : {}),
  };
}

const LORA_FLAG_NAMES = { r: '--rank', alpha: '--alpha', useRslora: '--rslora', dropout: '--dropout', targetModules: '--target-modules' } as const;

/**
 * The LoRA settings of a run: from the flags, or with `--adapter DIR` from the adapter's own config
 * (r, lora_alpha, use_rslora, target_modules, lora_dropout, per-module rank_pattern / alpha_pattern,
 * layers_to_transform), flags that contradict it refused naming both.
 */
async function loraFromFlags(args: ParsedArgs, initDir: string | undefined): Promise<LoraSettings> {
  const cmd = 'train';
  if (initDir !== undefined) {
    const dir = resolve(initDir);
    try {
      return loraSettingsOfAdapter(await readLoraConfig(dir), dir, explicitLora(args), LORA_FLAG_NAMES);
    } catch (err) {
      throw new CliError(`fedex train: --adapter: ${(err as Error).message}`);
    }
  }
  const targets = listFlag(args, 'target-modules', cmd);
  return defaultLoraSettings({
    r: numberFlag(args, 'rank', cmd, 8, { min: 1, max: 1024, integer: true }),
    alpha: numberFlag(args, 'alpha', cmd, 16, { min: 0 }),
    dropout: numberFlag(args, 'dropout', cmd, 0, { min: 0, max: 0.99 }),
    useRslora: booleanFlag(args, 'rslora'),
    ...(targets !== undefined ? { targetModules: targets } : {}),
  });
}

/** The trainer setup the flags describe (shared with `fedex eval`'s model/data/device flags); `--plan` needs no data. */
function setupFromFlags(args: ParsedArgs, modelDir: string, lora: LoraSettings): TrainerSetup;
function setupFromFlags(args: ParsedArgs, modelDir: string, lora: LoraSettings, dataOptional: true): PlanSetup;
function setupFromFlags(args: ParsedArgs, modelDir: string, lora: LoraSettings, dataOptional = false): PlanSetup {
  const cmd = 'train';
  const data = dataOptional ? optionalString(args, 'data') : stringFlag(args, 'data', cmd);
  const maxGradNorm = numberFlag(args, 'max-grad-norm', cmd, 1, { min: 0 });
  const evalData = optionalString(args, 'eval-data');
  const threads = args.values.threads === undefined ? undefined : numberFlag(args, 'threads', cmd, 1, { min: 1, max: 256, integer: true });
  const budgetGb = args.values['memory-budget'] === undefined ? undefined : numberFlag(args, 'memory-budget', cmd, 0, { min: 0.001, max: 1e6 });
  return {
    modelDir,
    ...(data !== undefined ? { data } : {}),
    ...(evalData !== undefined ? { evalData } : {}),
    lora,
    batchSize: numberFlag(args, 'batch-size', cmd, 8, { min: 1, max: 4096, integer: true }),
    seqLen: numberFlag(args, 'seq-len', cmd, 64, { min: 2, max: 65536, integer: true }),
    seed: numberFlag(args, 'seed', cmd, 0, { integer: true }),
    optimizer: choiceFlag(args, 'optimizer', cmd, ['adamw', 'sgd'] as const, 'adamw'),
    lr: numberFlag(args, 'lr', cmd, 2e-3, { min: 0 }),
    schedule: choiceFlag(args, 'schedule', cmd, SCHEDULES, 'linear'),
    warmupSteps: numberFlag(args, 'warmup', cmd, 0, { min: 0, integer: true }),
    weightDecay: numberFlag(args, 'weight-decay', cmd, 0, { min: 0 }),
    ...(maxGradNorm > 0 ? { maxGradNorm } : {}),
    gradAccumulation: numberFlag(args, 'grad-accum', cmd, 1, { min: 1, max: 4096, integer: true }),
    ...(booleanFlag(args, 'pack') ? { packing: true } : {}),
    device: choiceFlag(args, 'device', cmd, DEVICES, 'cpu'),
    ...(threads !== undefined ? { threads } : {}),
    ...(args.values['ort-log'] !== undefined ? { ortLogLevel: choiceFlag(args, 'ort-log', cmd, ORT_LOG_LEVELS, 'fatal') } : {}),
    ...(budgetGb !== undefined ? { memoryBudgetBytes: Math.round(budgetGb * 1e9) } : {}),
    ...basePrecisionFlag(args, cmd),
    ...recomputeFlag(args, cmd),
  };
}

/** Refuses to overwrite an adapter unless --force. */
async function checkOut(out: string, force: boolean): Promise<void> {
  const entries = await readdir(out).catch(() => [] as string[]);
  if (!force && entries.includes('adapter_config.json')) {
    throw new CliError(`fedex train: ${out} already holds an adapter; pass --force to overwrite it or choose another --out`);
  }
}

async function writeLine(file: FileHandle, record: Record<string, unknown>): Promise<void> {
  await file.write(`${JSON.stringify(record)}\n`);
}

/** `--plan`: the memory plan of the flags' setup from config.json and the safetensors headers (planTraining), as a table or JSON. */
async function plan(args: ParsedArgs, io: CliIO): Promise<number> {
  const modelDir = resolveModelDir(optionalString(args, 'model'), 'train');
  const setup = setupFromFlags(args, modelDir, await loraFromFlags(args, optionalString(args, 'adapter')), true);
  const result = await planTraining(setup, systemMemoryProbe());
  if (booleanFlag(args, 'json')) {
    io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    io.stdout.write(`memory plan of ${modelDir} (${result.modelType}, ${result.task}${result.taskFrom === 'architecture' && result.tasks.length > 1 ? ': give --data to plan for its task' : ''}) on ${result.device}; no weight was read\n\n`);
    io.stdout.write(`${renderTable(['part', 'size'], planRows(result, setup.optimizer))}\n\n${planVerdict(result)}\n`);
  }
  return result.batches === null ? 1 : 0;
}

async function train(args: ParsedArgs, io: CliIO): Promise<number> {
  if (booleanFlag(args, 'plan')) return plan(args, io);
  const modelDir = resolveModelDir(optionalString(args, 'model'), 'train');
  const out = resolve(stringFlag(args, 'out', 'train'));
  const initDir = optionalString(args, 'adapter');
  const setup = setupFromFlags(args, modelDir, await loraFromFlags(args, initDir));
  const steps = args.values.steps === undefined ? undefined : numberFlag(args, 'steps', 'train', 0, { min: 0, integer: true });
  const epochs = args.values.epochs === undefined ? undefined : numberFlag(args, 'epochs', 'train', 1, { min: 0 });
  if (steps !== undefined && epochs !== undefined) throw usageError("fedex train: give --steps or --epochs, not both. See 'fedex train --help'.");
  const evalExamples = numberFlag(args, 'eval-examples', 'train', 200, { min: 0, integer: true });
  await checkOut(out, booleanFlag(args, 'force'));

  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  let trainer: LoraTrainer | null = null;
  let metrics: FileHandle | null = null;
  try {
    trainer = await createTrainer(setup);
    const { note, recompute } = trainer.info.memory;
    if (note !== undefined) io.stderr.write(`fedex train: ${note}\n`);
    else if (recompute) io.stderr.write('fedex train: activation recomputation on (--recompute on): the backward pass recomputes each block from its input\n');
    // TrainerInfo.data: the encoded data's report (src/trainer/data/report.ts), once the trainer passes it on.
    const truncation = describeTruncation(trainer.info.data);
    if (truncation !== null) io.stderr.write(`fedex train: ${truncation}\n`);
    const base = describeBaseStorage(trainer.info.base);
    if (base !== null) io.stderr.write(`fedex train: ${base}\n`);
    const start = initDir !== undefined ? await readAdapterFolder(resolve(initDir), trainer.info, setup.lora) : trainer.initialAdapter(setup.seed);
    await mkdir(out, { recursive: true });
    const file = metrics = await open(join(out, 'metrics.jsonl'), 'w');
    let bar: ProgressBar | null = null;
    // One write at a time, in order.
    let writes = Promise.resolve();
    const result = await trainer.train({ adapter: start }, { ...(steps !== undefined ? { steps } : {}), ...(epochs !== undefined ? { epochs } : {}) }, { signal: controller.signal,
      onProgress: (p) => {
        bar ??= new ProgressBar('training', p.totalSteps, io.stderr);
        bar.tick(1, `loss ${p.loss.toFixed(3)} · ${Math.round(p.tokensPerSecond)} tok/s`);
        writes = writes.then(() => writeLine(file, { type: 'step', ...p }));
      } });
    (bar as ProgressBar | null)?.done();
    await writes;
    const config = await writeAdapterFolder(out, result.adapter, { info: trainer.info, baseModel: modelDir });
    let evaluation: EvalResult | null = null;
    if (evalExamples > 0 && trainer.info.evalExamples > 0) {
      evaluation = await trainer.evaluate({ adapter: result.adapter }, { maxExamples: evalExamples, signal: controller.signal });
      await writeLine(file, { type: 'eval', ...evaluation });
    }
    const summary = {
      out,
      model: modelDir,
      data: setup.data,
      modules: trainer.info.modules.length,
      targetModules: config.targetModules,
      steps: result.steps,
      examples: result.numExamples,
      tokens: result.tokens,
      seconds: result.seconds,
      tokensPerSecond: result.seconds > 0 ? result.tokens / result.seconds : 0,
      trainLoss: result.trainLoss,
      eval: evaluation,
      base: trainer.info.base,
    };
    await writeLine(file, { type: 'summary', ...summary });
    if (booleanFlag(args, 'json')) {
      io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    } else {
      io.stdout.write(`trained ${result.steps} steps (${result.numExamples} examples, ${trainer.info.modules.length} LoRA modules) in ${result.seconds.toFixed(1)} s, `
        + `${Math.round(summary.tokensPerSecond)} tokens/s; train loss ${result.trainLoss.toFixed(4)}\n`);
      if (evaluation !== null) io.stdout.write(`eval: ${formatEval(evaluation)}\n`);
      io.stdout.write(`adapter written to ${out} (adapter_config.json, adapter_model.safetensors); metrics in ${join(out, 'metrics.jsonl')}\n`);
    }
    return 0;
  } catch (err) {
    if (isAbortError(err)) {
      io.stderr.write('\nfedex train: interrupted; no adapter was written\n');
      return 130;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    await metrics?.close();
    await trainer?.dispose();
  }
}

export const trainCommand: CliCommand = defineCommand({
  name: 'train',
  summary: 'LoRA fine-tuning of a model on JSONL or a built-in task; writes a PEFT adapter',
  usage: USAGE,
  help: SUMMARY,
  flags: FLAGS,
  run: (args, io) => train(args, io),
});
