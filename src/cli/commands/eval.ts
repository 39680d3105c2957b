/**
 * `fedex eval`: mean loss, perplexity, and accuracy (classification) or greedy exact match
 * (prompt/completion) of a model folder, with or without a PEFT adapter, on a JSONL file or a
 * built-in task's held-out split. One line, or JSON with --json.
 */
import { join, resolve } from 'node:path';
import { readJsonFile } from '../../formats/jsonFile.js';
import { readLoraConfig } from '../../formats/peft.js';
import { architectureFor } from '../../model/registry.js';
import { BASE_PRECISIONS } from '../../model/basePrecision.js';
import type { BasePrecision } from '../../model/basePrecision.js';
import type { LoraSettings } from '../../model/types.js';
import { DEVICES } from '../../runtime/session.js';
import { loraSettingsOfAdapter, readAdapterFolder } from '../../trainer/adapterFolder.js';
import { resolveModelDir } from '../modelArg.js';
import { createTrainer } from '../../trainer/loraTrainer.js';
import { defaultLoraSettings } from '../../trainer/setup.js';
import type { EvalResult, LoraTrainer } from '../../trainer/types.js';
import { defineCommand, type CliCommand, type CliIO } from '../command.js';
import { booleanFlag, choiceFlag, numberFlag, optionalString, stringFlag } from '../args.js';
import type { FlagSpecs, ParsedArgs } from '../args.js';
import { usageError } from '../errors.js';

const FLAGS: FlagSpecs = {
  model: { type: 'string', value: 'dir', help: 'model folder', default: 'models/tiny-gpt2 (shipped)' },
  adapter: { type: 'string', value: 'dir', help: 'PEFT adapter folder to apply (default: the base model alone)' },
  data: { type: 'string', value: 'jsonl|task:NAME', help: 'a JSONL file (all of it) or a built-in task (its held-out split)' },
  'max-examples': { type: 'string', value: 'n', help: 'evaluate at most this many examples', default: '200' },
  'batch-size': { type: 'string', value: 'b', help: 'examples per batch', default: '16' },
  'seq-len': { type: 'string', value: 't', help: 'longest sequence (longer examples are cut)', default: "64, or the model's position limit when shorter" },
  'no-exact-match': { type: 'boolean', help: 'skip greedy decoding (loss and perplexity only)' },
  device: { type: 'string', value: DEVICES.join('|'), help: 'onnxruntime device', default: 'cpu' },
  threads: { type: 'string', value: 'n', help: 'onnxruntime intra-op threads (default: all cores)' },
  'base-precision': { type: 'string', value: BASE_PRECISIONS.join('|'), help: 'precision the frozen base weights are held in (as fedex train; docs/devices.md)', default: 'fp32' },
  json: { type: 'boolean', help: 'print the result as JSON' },
};

const USAGE = 'fedex eval [--model <dir>] [--adapter <dir>] --data <jsonl|task:NAME> [--json]';
const SUMMARY = 'Evaluates a model (and a PEFT adapter): mean loss, perplexity, accuracy or greedy exact match.';

/** A comma-separated list flag (`--target-modules c_attn,c_proj`). */
export function listFlag(args: ParsedArgs, name: string, command: string): string[] | undefined {
  const raw = optionalString(args, name);
  if (raw === undefined) return undefined;
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => s.length === 0)) throw usageError(`fedex ${command}: --${name} must be a comma-separated list of names, got '${raw}'.`);
  return items;
}

/** `--base-precision` as a setup field (absent: the trainer's default, fp32); shared by train, eval, join and simulate. */
export function basePrecisionFlag(args: ParsedArgs, command: string): { basePrecision?: BasePrecision } {
  return args.values['base-precision'] === undefined ? {} : { basePrecision: choiceFlag(args, 'base-precision', command, BASE_PRECISIONS, 'fp32') };
}

/** One line: loss, perplexity, accuracy / exact match, examples. */
export function formatEval(r: EvalResult): string {
  const parts = [`loss ${r.loss.toFixed(4)}`, `perplexity ${r.perplexity.toPrecision(4)}`];
  if (r.accuracy !== undefined) parts.push(`accuracy ${(100 * r.accuracy).toFixed(1)}%`);
  if (r.exactMatch !== undefined) parts.push(`exact match ${(100 * r.exactMatch).toFixed(1)}%`);
  return `${parts.join(', ')} (${r.examples} examples)`;
}

/** LoRA settings of a PEFT folder's adapter_config.json, per-module ranks, alphas and layers included (docs/models.md, "PEFT adapters"). */
async function loraOfAdapter(dir: string): Promise<LoraSettings> {
  return loraSettingsOfAdapter(await readLoraConfig(dir), dir);
}

/** Default sequence length of evaluation: 64, or the model's position limit when that is shorter. */
export const EVAL_SEQ_LEN = 64;

/**
 * `--seq-len` when given; else {@link EVAL_SEQ_LEN} capped at the model's position limit (read from
 * its config.json), with a note saying so. An unreadable config is left for the trainer to report.
 */
export async function evalSeqLen(args: ParsedArgs, modelDir: string): Promise<{ seqLen: number; note?: string }> {
  if (args.values['seq-len'] !== undefined) return { seqLen: numberFlag(args, 'seq-len', 'eval', EVAL_SEQ_LEN, { min: 2, max: 65536, integer: true }) };
  const max = await readJsonFile(join(modelDir, 'config.json'), 'no config.json', 'CONFIG_INVALID_JSON')
    .then((config) => architectureFor(config as Record<string, unknown>).maxSeqLen?.(config as Record<string, unknown>), () => undefined)
    .catch(() => undefined);
  if (max === undefined || max.value >= EVAL_SEQ_LEN) return { seqLen: EVAL_SEQ_LEN };
  return { seqLen: max.value, note: `--seq-len ${max.value}: the model takes at most ${max.value} positions (${max.key}), fewer than the default ${EVAL_SEQ_LEN}` };
}

async function evaluate(args: ParsedArgs, io: CliIO): Promise<{ result: EvalResult; model: string; adapter: string | null; data: string }> {
  const cmd = 'eval';
  const model = resolveModelDir(optionalString(args, 'model'), 'eval');
  const adapterDir = optionalString(args, 'adapter');
  const data = stringFlag(args, 'data', cmd);
  const threads = args.values.threads === undefined ? undefined : numberFlag(args, 'threads', cmd, 1, { min: 1, max: 256, integer: true });
  const batchSize = numberFlag(args, 'batch-size', cmd, 16, { min: 1, max: 4096, integer: true });
  const lora = adapterDir !== undefined ? await loraOfAdapter(resolve(adapterDir)) : defaultLoraSettings();
  const { seqLen, note } = await evalSeqLen(args, model);
  if (note !== undefined) io.stderr.write(`fedex eval: ${note}\n`);
  let trainer: LoraTrainer | null = null;
  try {
    trainer = await createTrainer({
      modelDir: model,
      data,
      evalData: data,
      lora,
      batchSize,
      seqLen,
      seed: 0,
      optimizer: 'sgd',
      lr: 0,
      device: choiceFlag(args, 'device', cmd, DEVICES, 'cpu'),
      ...(threads !== undefined ? { threads } : {}),
      ...basePrecisionFlag(args, cmd),
      // Evaluation runs no training step, so there is none to fit: batches stay as asked.
      memoryBudgetBytes: Number.MAX_SAFE_INTEGER,
    });
    // Without an adapter, B = 0: the LoRA path adds nothing and the base model is evaluated.
    const adapter = adapterDir !== undefined ? await readAdapterFolder(resolve(adapterDir), trainer.info, lora) : trainer.initialAdapter(0);
    const result = await trainer.evaluate({ adapter }, { maxExamples: numberFlag(args, 'max-examples', cmd, 200, { min: 1, integer: true }), exactMatch: !booleanFlag(args, 'no-exact-match') });
    return { result, model, adapter: adapterDir !== undefined ? resolve(adapterDir) : null, data };
  } finally {
    await trainer?.dispose();
  }
}

export const evalCommand: CliCommand = defineCommand({
  name: 'eval',
  summary: 'evaluate a model (+ PEFT adapter): loss, perplexity, accuracy or exact match',
  usage: USAGE,
  help: SUMMARY,
  flags: FLAGS,
  async run(args, io) {
    const { result, model, adapter, data } = await evaluate(args, io);
    if (booleanFlag(args, 'json')) io.stdout.write(`${JSON.stringify({ model, adapter, data, ...result }, null, 2)}\n`);
    else io.stdout.write(`${formatEval(result)}\n`);
    return 0;
  },
});
