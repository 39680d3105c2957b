// A tiny GPT-2 model folder as a federation's base model, offered by the coordinator: the model
// (layout and base weights as the CLI builds them), its manifest, and coordinator configs that use it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { federationModel, type FederationModel } from '../../../src/cli/commands/federationCommon.js';
import type { ModelManifest } from '../../../src/federation/shared/modelBase.js';
import type { CoordinatorConfig } from '../../../src/federation/coordinator/config.js';
import type { ModelOffer } from '../../../src/federation/coordinator/modelServer.js';
import type { ParamsOf } from '../../../src/federation/protocol/messages.js';
import { writeTinyGpt2 } from '../simulation/tinyModel.js';
import { coordinatorConfig, TOKEN } from './fixtures.js';

export interface TinyModel {
  readonly dir: string;
  readonly model: FederationModel;
  readonly manifest: ModelManifest;
  readonly totalBytes: number;
  /** The offer of this folder (small chunks make many requests). */
  offer(maxChunkBytes?: number): ModelOffer;
  /** A file's bytes as the coordinator has them. */
  bytes(index: number): Promise<Buffer>;
}

/** Writes the tiny model into `<root>/model` and builds it as `fedex host` does. */
export async function tinyModel(root: string): Promise<TinyModel> {
  const dir = join(root, 'model');
  await writeTinyGpt2(dir);
  const model = await federationModel(dir, 'host', { rank: 2, alpha: 4, seed: 0, targetModules: [] });
  const manifest = model.manifest!;
  return {
    dir,
    model,
    manifest,
    totalBytes: manifest.files.reduce((n, f) => n + f.bytes, 0),
    offer: (maxChunkBytes = 4096) => ({ dir, hash: manifest.hash, files: manifest.files, maxChunkBytes }),
    bytes: (i) => readFile(join(dir, manifest.files[i].name)),
  };
}

/** A coordinator config on the tiny model (1 client, 1 round by default). */
export function modelConfig(runDir: string, m: TinyModel, overrides: Partial<CoordinatorConfig> = {}): CoordinatorConfig {
  return coordinatorConfig(runDir, {
    layout: m.model.layout,
    base: m.model.base,
    lora: { rank: 2, alpha: 4, targetModules: m.model.targetModules },
    minClients: 1,
    quorum: { count: 1 },
    rounds: 1,
    ...overrides,
  });
}

/** The hello of a client without the base model that can fetch it. */
export function fetchHello(overrides: Partial<ParamsOf<'hello'>> = {}): { method: 'hello'; params: ParamsOf<'hello'> } {
  return {
    method: 'hello',
    params: {
      protocolMajor: 1,
      protocolMinor: 0,
      token: TOKEN,
      clientName: 'fetcher',
      clientId: 'fetcher',
      device: 'cpu',
      capabilities: { uplinkDtypes: ['float32'], factoredResidual: true, modelTransfer: true, maxFrameBytes: 1 << 24 },
      ...overrides,
    },
  };
}
