/**
 * What `fedex simulate`, `host` and `join` share: finding the model folder (the shipped default
 * model included), the adapted-module layout a model and LoRA settings imply, the trainer factory,
 * and where human-readable output goes when `--events -` takes stdout.
 */
import { withCheckpoint } from '../../model/checkpoint.js';
import { architectureFor } from '../../model/registry.js';
import type { AdaptedModule, LoraSettings } from '../../model/types.js';
import type { Matrix } from '../../core/tensor.js';
import type { BaseSource } from '../../federation/shared/baseWeights.js';
import { modelBaseSource, modelManifest, type ModelManifest } from '../../federation/shared/modelBase.js';
import type { AdapterLayout } from '../../federation/protocol/adapterTensors.js';
import { modelFolderWriter } from '../../federation/shared/modelFolder.js';
import { createSyntheticBase, SYNTHETIC_TARGET_MODULES, syntheticLayout } from '../../federation/client/syntheticTrainer.js';
import type { FlagSpecs } from '../args.js';
import { RECOMPUTE_FLAG } from '../recomputeFlag.js';
import type { CliIO } from '../command.js';
import { usageError } from '../errors.js';
import { resolveModelDir } from '../modelArg.js';

/** The adapted modules of a model under some LoRA settings, as the federation's layout. */
export interface ModelLayout {
  readonly layout: AdapterLayout;
  readonly modules: readonly AdaptedModule[];
  /** The target modules used (the architecture's default when none were given). */
  readonly targetModules: readonly string[];
  readonly modelType: string;
}

/** Builds the model's graph (no data, no onnxruntime) to learn which modules the LoRA settings adapt. */
export async function modelLayout(modelDir: string, lora: { rank: number; alpha: number; targetModules: readonly string[] }): Promise<ModelLayout> {
  return withCheckpoint(modelDir, async (checkpoint) => {
    const arch = architectureFor(checkpoint.config);
    const targetModules = lora.targetModules.length > 0 ? lora.targetModules : arch.defaultTargetModules;
    const settings: LoraSettings = { r: lora.rank, alpha: lora.alpha, useRslora: false, dropout: 0, targetModules, freezeA: false, modulesToSave: [] };
    const graph = arch.build({ config: checkpoint.config, tensors: checkpoint.tensors, lora: settings, task: 'causal-lm', training: false });
    if (graph.modules.length === 0) throw usageError(`target modules ${targetModules.join(', ')} match no module of ${modelDir}`);
    return {
      layout: graph.modules.map((m) => ({ module: m.path, in: m.inFeatures, out: m.outFeatures, rank: lora.rank, fanInFanOut: m.layout === 'conv1d' })),
      modules: graph.modules,
      targetModules,
      modelType: checkpoint.modelType,
    };
  });
}

/** A comma-separated list flag (`--target-modules c_attn,c_proj`). */
export function listFlag(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** A comma-separated list of LoRA ranks (`--ranks`, `--client-ranks`), in the order given: integers in 1..max, at least one. */
export function rankListFlag(raw: string, command: string, flag: string, max: number): number[] {
  const items = listFlag(raw);
  const ranks = items.map(Number);
  const bad = items.find((_, i) => !(Number.isInteger(ranks[i]) && ranks[i] >= 1 && ranks[i] <= max));
  if (bad !== undefined || items.length === 0) throw usageError(`fedex ${command}: --${flag} must list integers in 1..${max} separated by commas (4,8,16), got '${bad ?? raw}'.`);
  return ranks;
}

/** How a federation client holds and trains its model (`fedex join`, `fedex simulate`): --base-precision and --recompute. */
export const CLIENT_TRAINER_FLAGS: FlagSpecs = {
  'base-precision': {
    type: 'string',
    value: 'fp32|fp16|bf16|int4',
    default: 'fp32',
    help: "precision of the frozen base weights (as fedex train); the adapted modules' bases stay float32: they receive FedEx residuals (docs/devices.md)",
  },
  ...RECOMPUTE_FLAG,
};

/** `--events file|-`: the JSONL event stream (federation/events/eventSink.ts's `eventsFlagSink`). */
export const EVENTS_FLAG: FlagSpecs = {
  events: { type: 'string', value: 'file|-', help: "JSONL event stream to a file, or '-' for stdout (human output to stderr)" },
};

/** Where human-readable output goes: stderr when the event stream takes stdout (`--events -`). */
export function humanOut(io: CliIO, eventsTarget: string | undefined): CliIO['stdout'] {
  return eventsTarget === '-' ? io.stderr : io.stdout;
}

/** Seconds as `12.3 s` or `4 min 05 s`. */
export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s - 60 * m)).padStart(2, '0')} s`;
}

/** The base model of a federation as the host or a client holds it. */
export interface FederationModel {
  /** Model folder, or null for the synthetic model. */
  readonly modelDir: string | null;
  readonly label: string;
  readonly base: BaseSource;
  /** Adapted modules (host: for the given LoRA settings; client: every module that could be adapted). */
  readonly layout: AdapterLayout;
  readonly targetModules: readonly string[];
  /** The folder's files and content hash (absent for the synthetic model). */
  readonly manifest?: ModelManifest;
  /** Writes a model folder with the adapted weights replaced (absent for the synthetic model). */
  readonly writeModel?: (dir: string, weights: ReadonlyMap<string, Matrix<Float32Array>>) => Promise<void>;
}

/**
 * The model behind `--model`: a folder (its content hash, the adapted weights) or `synthetic` (a
 * seeded Gaussian GPT-2-shaped base that host and clients generate identically from `--seed`).
 * `lora.targetModules` empty = the architecture's default; `all-linear` gives every candidate.
 * `known` is the folder's manifest when it was just computed (a verified model cache): not hashed again.
 */
export async function federationModel(given: string | undefined, command: string, lora: { rank: number; alpha: number; seed: number; targetModules: readonly string[] }, known?: ModelManifest): Promise<FederationModel> {
  if (given === 'synthetic') {
    // The model of `fedex simulate --model synthetic`: host and clients generate it identically from the seed.
    const layout = syntheticLayout(lora.rank);
    return { modelDir: null, label: 'synthetic', base: createSyntheticBase(layout, lora.seed), layout, targetModules: SYNTHETIC_TARGET_MODULES };
  }
  const modelDir = resolveModelDir(given, command);
  const resolved = await modelLayout(modelDir, lora);
  const manifest = known ?? await modelManifest(modelDir);
  return {
    modelDir,
    label: modelDir,
    layout: resolved.layout,
    targetModules: resolved.targetModules,
    manifest,
    base: modelBaseSource(modelDir, manifest.hash, resolved.modules.map((m) => ({ path: m.path, baseKey: m.baseKey }))),
    writeModel: modelFolderWriter(modelDir, resolved.modules),
  };
}
