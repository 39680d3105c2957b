/** The LoRA trainer factory the CLI's federation commands use (src/trainer's `createTrainer`, in worker threads). */
import type { TrainerFactory } from '../../federation/client/loraLocalTrainer.js';
import { createTrainer } from '../../trainer/loraTrainer.js';

/** Returns src/trainer's `createTrainer`. */
export async function loadTrainerFactory(): Promise<TrainerFactory> {
  return createTrainer;
}
