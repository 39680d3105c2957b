/**
 * The architectures this project builds, found by config.json's `model_type`. Adding one = one
 * entry in {@link ARCHITECTURES}.
 */
import { REFUSED_MODEL_TYPES } from '../formats/hfConfig.js';
import { ModelError } from './errors.js';
import { bertArchitecture } from './bert/architecture.js';
import { gemmaArchitecture } from './gemma/architecture.js';
import { gpt2Architecture } from './gpt2/architecture.js';
import { llamaArchitecture } from './llama/architecture.js';
import { phi3Architecture } from './phi3/architecture.js';
import type { Architecture } from './types.js';

/** Every registered architecture. */
export const ARCHITECTURES: readonly Architecture[] = [
  gpt2Architecture,
  llamaArchitecture,
  bertArchitecture,
  phi3Architecture,
  gemmaArchitecture,
];

/** The `model_type` values some registered architecture accepts, in registration order. */
export function supportedModelTypes(): string[] {
  return ARCHITECTURES.flatMap((a) => a.modelTypes);
}

/** The architecture for a parsed config.json; UNSUPPORTED_MODEL lists the supported types. */
export function architectureFor(config: Readonly<Record<string, unknown>>): Architecture {
  const modelType = config.model_type;
  if (typeof modelType !== 'string') {
    throw new ModelError('UNSUPPORTED_MODEL', `config.json has no string 'model_type' (supported: ${supportedModelTypes().join(', ')})`);
  }
  if (Object.hasOwn(REFUSED_MODEL_TYPES, modelType)) throw new ModelError('UNSUPPORTED_MODEL', REFUSED_MODEL_TYPES[modelType]);
  const arch = ARCHITECTURES.find((a) => a.modelTypes.includes(modelType));
  if (arch === undefined) {
    throw new ModelError('UNSUPPORTED_MODEL', `model_type '${modelType}' is not supported (supported: ${supportedModelTypes().join(', ')})`);
  }
  return arch;
}
