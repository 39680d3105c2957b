/**
 * The one way a federation client with a real model is built — by `fedex join` (and so the
 * extension's *Join Federation*, which runs it) and by `fedex simulate`'s in-process clients: the
 * model folder's base source (loads exactly the federation's modules at welcome), the LoRA trainer
 * of src/trainer on this client's data, and the `FederationClient` that connects them. Whatever a
 * simulation's clients do, a joined client does too.
 */
import type { BaseSource } from '../shared/baseWeights.js';
import { FederationClient, type FederationClientOptions } from './client.js';
import { modelBaseSource } from '../shared/modelBase.js';
import { createOnnxTrainer, type OnnxLocalTrainer, type OnnxTrainerOptions } from './loraLocalTrainer.js';

/** A model client: where it connects, its model folder and how it trains. */
export interface ModelClientOptions extends Omit<FederationClientOptions, 'base' | 'trainer'> {
  /** The model folder (its content hash is `hash`). */
  readonly modelDir: string;
  /** Content hash of the model folder (docs/protocol.md §8), from its manifest. */
  readonly hash: string;
  /** How the client trains (data, shard, device, threads, …); the federation's settings come from `welcome`. */
  readonly training: Omit<OnnxTrainerOptions, 'modelDir'>;
  /** A base source of the same folder to share (a simulation's clients share one); default: a new one. */
  readonly base?: BaseSource;
}

/** A client and its trainer (dispose the trainer when the client is done). */
export interface ModelClient {
  readonly client: FederationClient;
  readonly trainer: OnnxLocalTrainer;
}

/** Builds the client; nothing is loaded until it is welcomed, nothing trained until a round starts. */
export function createModelClient(o: ModelClientOptions): ModelClient {
  const { modelDir, hash, training, base, ...connection } = o;
  if (base !== undefined && base.hash !== hash) throw new RangeError(`createModelClient: the shared base source has hash ${base.hash}, the model folder ${hash}`);
  const trainer = createOnnxTrainer({ ...training, modelDir });
  const client = new FederationClient({ ...connection, base: base ?? modelBaseSource(modelDir, hash), trainer });
  return { client, trainer };
}
