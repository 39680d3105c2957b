/**
 * The error class of src/model: a stable `code` for tests and the CLI, and a message that names the
 * folder, file, tensor, module or option that is wrong.
 */

/** Stable codes of {@link ModelError}. */
export type ModelErrorCode =
  /** `target_modules` matched no module of the model. */
  | 'TARGET_NOT_FOUND'
  /** A `target_modules` regular expression does not compile. */
  | 'INVALID_TARGET_PATTERN'
  /** A `rank_pattern` / `alpha_pattern` key or a `layers_to_transform` index that selects no module of the model, or a bad rank. */
  | 'LORA_PATTERN_INVALID'
  /** A `modules_to_save` entry names no module of the model. */
  | 'MODULE_TO_SAVE_NOT_FOUND'
  /** The checkpoint folder or a file it needs is missing. */
  | 'CHECKPOINT_NOT_FOUND'
  /** The folder holds PyTorch pickles only. */
  | 'CHECKPOINT_NOT_SAFETENSORS'
  /** The shard index is malformed or points at tensors its shards do not hold. */
  | 'CHECKPOINT_INVALID_INDEX'
  /** A tensor the model needs is not in the checkpoint. */
  | 'TENSOR_NOT_FOUND'
  /** A tensor has another shape than the config implies. */
  | 'TENSOR_SHAPE_MISMATCH'
  /** The checkpoint holds tensors the built model never reads (and no listed allowance covers). */
  | 'TENSOR_UNUSED'
  /** No registered architecture for the config's `model_type`. */
  | 'UNSUPPORTED_MODEL'
  /** The architecture cannot build this task or option. */
  | 'UNSUPPORTED_OPTION'
  /** A config field is missing or out of range. */
  | 'CONFIG_INVALID';

/** A checkpoint, config or build request the model layer cannot satisfy. */
export class ModelError extends Error {
  readonly code: ModelErrorCode;

  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModelError';
    this.code = code;
  }
}
