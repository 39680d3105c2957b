/**
 * The contract between the architectures (src/model/<arch>/) and the trainer (src/trainer/).
 *
 * An architecture turns a checkpoint's `config.json` and tensor list into a graph (src/graph):
 * token ids in, logits and loss out, every LoRA factor a graph input. Frozen base weights are graph
 * inputs too, fed as float32 each run (zero-copy in onnxruntime), so a FedEx round's base update
 * needs no new session. Only the trainable tensors and small scalars leave a session.
 */
import type { Layout } from '../core/lora.js';
import type { GraphBuilder, Value } from '../graph/builder.js';

/** The task head a graph ends in. */
export type ModelTask = 'causal-lm' | 'sequence-classification';

/** LoRA settings, as PEFT's `LoraConfig` names them. */
export interface LoraSettings {
  readonly r: number;
  readonly alpha: number;
  readonly useRslora: boolean;
  /** `lora_dropout`, on the adapter's input only; 0 = none. */
  readonly dropout: number;
  /**
   * PEFT `target_modules`: a module is adapted when its path equals a name or ends with `.name`
   * (e.g. `c_attn` matches `transformer.h.0.attn.c_attn`).
   */
  readonly targetModules: readonly string[];
  /** FFA-LoRA: A stays at its initialisation (a graph input that is not trained). */
  readonly freezeA: boolean;
  /**
   * LoRA-SB (Fed-SB, core/loraSb.ts): A and B are frozen graph inputs and an r × r matrix R between
   * them, `<path>.lora_R`, is the module's only trainable tensor (y += s·((x·Aᵀ)·Rᵀ)·Bᵀ). Default false.
   */
  readonly loraSb?: boolean;
  /** PEFT `modules_to_save` (e.g. a classification head): trained in full and saved with the adapter. */
  readonly modulesToSave: readonly string[];
  /**
   * PEFT `rank_pattern`: module-path pattern → rank for the modules whose rank is not `r` (the first
   * key that matches the end of the path at a dot, as PEFT's `get_pattern_key`; targetModules.ts).
   * Absent or empty: every module has rank `r`.
   */
  readonly rankPattern?: Readonly<Record<string, number>>;
  /** PEFT `alpha_pattern`: module-path pattern → alpha, matched as rankPattern. Absent or empty: `alpha` everywhere. */
  readonly alphaPattern?: Readonly<Record<string, number>>;
  /** PEFT `layers_to_transform`: only targeted modules in these layers are adapted. Absent, null or empty: every layer. */
  readonly layersToTransform?: readonly number[] | number | null;
  /** PEFT `layers_pattern`: the name of the layer list the index follows (`h`, `layers`); absent or null: any. */
  readonly layersPattern?: readonly string[] | string | null;
}

/** One LoRA-adapted module of a built graph. */
export interface AdaptedModule {
  /** PEFT module path, e.g. `transformer.h.0.attn.c_attn` (adapter keys: `base_model.model.<path>.lora_A.weight`). */
  readonly path: string;
  /** Checkpoint key of the frozen base weight W0 (e.g. `h.0.attn.c_attn.weight`). */
  readonly baseKey: string;
  readonly layout: Layout;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Graph input names of A `[r, in]` and B `[out, r]`. */
  readonly aInput: string;
  readonly bInput: string;
  /** LoRA-SB (`LoraSettings.loraSb`): graph input name of R `[r, r]`, the module's trainable tensor. */
  readonly rInput?: string;
}

/** Where a frozen graph input's float32 data comes from. */
export interface FrozenInput {
  /** Graph input name. */
  readonly input: string;
  /** Checkpoint tensor key (float32 after conversion from F16/BF16). */
  readonly key: string;
  readonly shape: readonly number[];
}

/**
 * A trainable graph input that is not a LoRA factor: a `modules_to_save` tensor (e.g. a
 * classification head), or with `trainAll` any checkpoint tensor.
 */
export interface FullTrainable {
  /** Graph input name. */
  readonly input: string;
  /**
   * The tensor's name in the Hugging Face model class, e.g. `score.weight` or
   * `transformer.h.0.ln_1.weight` (PEFT adapter files store it as `base_model.model.<name>`).
   */
  readonly name: string;
  /** Checkpoint key it starts from; undefined when the checkpoint lacks it (a new head). */
  readonly key?: string;
  readonly shape: readonly number[];
  /** Standard deviation of the normal initialisation when `key` is undefined (zero mean). */
  readonly initStd: number;
}

/** A model built as a graph, ready for `buildTrainStep` (training) or `toOnnx` (evaluation). */
export interface ModelGraph {
  readonly graph: GraphBuilder;
  readonly task: ModelTask;
  /** int64 `[batch, seq]`. */
  readonly inputIds: Value;
  /** int64 `[batch, seq]`, 1 = real token, 0 = padding. */
  readonly attentionMask: Value;
  /** int64 `[batch, seq]` for causal LM (aligned with inputIds; the loss shifts; −100 ignored), `[batch]` for classification. */
  readonly labels: Value;
  /** `[batch, seq, vocab]` (causal LM) or `[batch, numLabels]` (classification). */
  readonly logits: Value;
  /** Scalar mean loss over the counted tokens or examples. */
  readonly loss: Value;
  /** Trainable graph inputs: LoRA A (unless frozen) and B of every adapted module, then `modules_to_save` tensors. */
  readonly trainable: readonly Value[];
  /** Frozen graph inputs fed from the checkpoint each run. */
  readonly frozen: readonly FrozenInput[];
  readonly modules: readonly AdaptedModule[];
  /**
   * The int64 scalar seed of every dropout site (LoRA and model dropout), present only when the
   * graph applies dropout (`training` and a rate > 0). Feed a new value each step.
   */
  readonly dropoutSeed?: Value;
  /** Where the non-LoRA entries of `trainable` start from and how they are named, in `trainable` order. */
  readonly fullTrainable?: readonly FullTrainable[];
}

/** What an architecture is built from. */
export interface BuildOptions {
  /** The parsed `config.json`. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Checkpoint tensor keys and shapes (as stored, before any prefix mapping). */
  readonly tensors: ReadonlyMap<string, readonly number[]>;
  readonly lora: LoraSettings;
  readonly task: ModelTask;
  /** Dropout seed input is added when any dropout rate is > 0 and `training` is true. */
  readonly training: boolean;
  /** Fixed sequence length, or undefined for a symbolic one. */
  readonly seqLen?: number;
  /**
   * Full fine-tuning instead of LoRA: every checkpoint tensor is trainable (no adapters, `modules`
   * empty). Used to pretrain the tiny default model with the project's own code.
   */
  readonly trainAll?: boolean;
}

/** One architecture (GPT-2, Llama, BERT/RoBERTa): recognises its config and builds graphs. */
export interface Architecture {
  /** HF `model_type` values it accepts (e.g. `gpt2`; `llama`, `mistral`, `qwen2`; `bert`, `roberta`). */
  readonly modelTypes: readonly string[];
  /** Default `target_modules` when the user names none (PEFT's defaults for this family). */
  readonly defaultTargetModules: readonly string[];
  /** Tasks this architecture supports. */
  readonly tasks: readonly ModelTask[];
  build(options: BuildOptions): ModelGraph;
  /**
   * The longest sequence the checkpoint's position table covers (GPT-2 `n_positions`, Llama
   * `max_position_embeddings`), with the config key it comes from; undefined when unbounded.
   */
  maxSeqLen?(config: Readonly<Record<string, unknown>>): { readonly value: number; readonly key: string } | undefined;
}
