// A trainer on a tiny GPT-2 model folder for a whole suite: the fixture the trainer tests that need a
// real model folder (not the in-memory tiny model) share.
import { join } from 'node:path';
import { after, before } from 'node:test';
import { createTrainer, type CreateTrainerOptions } from '../../src/trainer/loraTrainer.js';
import type { LoraTrainer, TrainerSetup } from '../../src/trainer/types.js';
import { suiteTempDir } from '../helpers/tempDir.js';
import { writeTinyGpt2Folder } from './fixtures.js';
import { smallSetup } from './setups.js';

export interface TinyGpt2Trainer {
  /** The suite's temp folder. */
  readonly path: string;
  /** The model folder, `path`/`folder`. */
  readonly modelDir: string;
  /** smallSetup with the overrides, on `modelDir`. */
  readonly setup: TrainerSetup;
  readonly trainer: LoraTrainer;
}

/**
 * For the enclosing `describe`: a suite temp folder (see suiteTempDir) with a tiny GPT-2 (writeTinyGpt2Folder) in
 * `folder`, and a trainer on it (createTrainer with `options`), made before the suite's tests; the trainer is disposed
 * after them, before the folder is removed. Read the fields inside hooks and tests.
 */
export function suiteTinyGpt2Trainer(prefix: string, folder: string, overrides: Partial<TrainerSetup>, options: CreateTrainerOptions = {}): TinyGpt2Trainer {
  let made: Omit<TinyGpt2Trainer, 'path'> | undefined;
  after(() => made?.trainer.dispose());
  const tmp = suiteTempDir(prefix);
  before(async () => {
    const modelDir = join(tmp.path, folder);
    await writeTinyGpt2Folder(modelDir);
    const setup = smallSetup({ modelDir, ...overrides });
    made = { modelDir, setup, trainer: await createTrainer(setup, options) };
  });
  const get = (): Omit<TinyGpt2Trainer, 'path'> => {
    if (made === undefined) throw new Error(`suiteTinyGpt2Trainer('${prefix}'): read before the suite's before() hook made the trainer`);
    return made;
  };
  return {
    get path(): string {
      return tmp.path;
    },
    get modelDir(): string {
      return get().modelDir;
    },
    get setup(): TrainerSetup {
      return get().setup;
    },
    get trainer(): LoraTrainer {
      return get().trainer;
    },
  };
}
