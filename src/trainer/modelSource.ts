/**
 * What the trainer needs from a model: its config, tensor shapes, float32 tensor data, the
 * architecture that builds its graph, and its tokenizer. `openModelSource(dir)` (modelFolder.ts)
 * makes one from a Hugging Face folder; tests may assemble one in memory.
 */
import type { Architecture } from '../model/types.js';
import type { TextTokenizer } from './data/tokenizer.js';

/** A model the trainer can build and feed. */
export interface ModelSource {
  /** For messages: the folder or a description. */
  readonly name: string;
  /** The parsed config.json. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Checkpoint tensor keys and shapes as stored. */
  readonly tensors: ReadonlyMap<string, readonly number[]>;
  readonly architecture: Architecture;
  /** A checkpoint tensor as float32 (converted from F16/BF16). */
  readFloat32(key: string): Promise<Float32Array>;
  /**
   * A checkpoint tensor as stored: its safetensors dtype (`F16`, `BF16`, …) and bytes. Optional; with
   * it a weight stored in the precision the trainer holds it in is fed without widening on the host.
   */
  readStored?(key: string): Promise<{ readonly dtype: string; readonly bytes: Uint8Array }>;
  /** The model's tokenizer, or null when it has none (pre-tokenized data only). */
  loadTokenizer(): Promise<TextTokenizer | null>;
  close(): Promise<void>;
}
