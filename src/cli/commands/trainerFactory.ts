/** The LoRA trainer factory the CLI's federation commands use (src/trainer). */
import type { TrainerFactory } from '../../federation/client/onnxTrainer.js';
import { CliError } from '../errors.js';

/** Returns src/trainer's `createTrainer`. */
export async function loadTrainerFactory(): Promise<TrainerFactory> {
  throw new CliError('the onnxruntime LoRA trainer (src/trainer) is not available in this build; use --model synthetic');
}
